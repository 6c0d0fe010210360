//! The chip-to-chip network as collective communication sees it ([`Interconnect`]: chips in
//! nodes, nodes in pods, one bandwidth per tier) and the bytes a collective moves through each
//! chip's links on each tier ([`Volume`]). Shared by the hardware description, which builds an
//! [`Interconnect`] from a file's `[interconnect]` section, and by the shardings, which price their
//! collectives on it.
//!
//! Three tiers: a *node* (GPUs on one NVLink / NVSwitch or Infinity Fabric domain: 8 GPUs, an
//! NVL72 rack; a TPU slice's ICI torus), a *pod* (nodes on one non-blocking switch fabric: the
//! rail-optimised scalable units of a DGX SuperPOD, Meta's 3,072-GPU pods), and the network between
//! pods (an oversubscribed aggregation tier; TPU slices talk over the data-centre network, DCN). A
//! file without pods has one pod of every chip, and then the tiers are today's two.
//!
//! Ring collectives (Patarasuk & Yuan 2009) over a group of `n` chips, `S` the bytes of the whole
//! tensor: an all-gather or a reduce-scatter moves `(n-1)/n S` through each chip's links, an
//! all-reduce twice that. A group that spans nodes runs hierarchically (NCCL's and Megatron's
//! intra-node / inter-node rings; XLA's ICI then DCN collectives on multi-slice TPUs), one ring
//! per tier, each over the share the tier below left: with `k` of its chips in each node and `q`
//! in each pod (`n / q` pods), each chip moves, per all-gather or reduce-scatter,
//! - `(1 - 1/k) S` over the node's network (a ring of `k` over the whole tensor),
//! - `(1/k - 1/q) S` between the nodes of its pod (a ring of `q/k` over its `S/k` share), and
//! - `(1/q - 1/n) S` between pods (a ring of `n/q` over its `S/q` share),
//!
//! `(1 - 1/n) S` in all, as a flat ring. A group whose chips do not fill whole nodes (or pods) is
//! spread evenly over the fewest that hold it: PaLM's 6,144 TPU v4 chips in two slices of 3,072
//! (Chowdhery et al. 2022, section 4), not one slice and a half.

/// The chip-to-chip network, as ring collectives see it: chips in nodes, nodes in pods, and one
/// bandwidth per chip on each tier.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interconnect {
    /// Bytes per second one chip sends (and at the same time receives) to chips of its node in a
    /// ring collective. Unit: bytes/s.
    pub intra_bytes_per_s: f64,
    /// Chips that share the intra-node network.
    pub chips_per_node: u32,
    /// Bytes per second one chip sends (and receives) to chips of other nodes of its pod. Unit:
    /// bytes/s.
    pub inter_bytes_per_s: f64,
    /// Chips of one pod: nodes joined at `inter_bytes_per_s` per chip (a whole number of nodes;
    /// [`u32::MAX`] or the whole network when the network has no tier above its nodes).
    pub chips_per_pod: u32,
    /// Bytes per second one chip sends (and receives) to chips of other pods: its network card's
    /// share of the oversubscribed tier above the pods (a TPU chip's DCN share). Unit: bytes/s.
    pub inter_pod_bytes_per_s: f64,
}

/// Bytes one chip moves in a collective: over the intra-node network, between the nodes of its
/// pod and between pods.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Volume {
    pub intra_bytes: f64,
    pub inter_bytes: f64,
    pub inter_pod_bytes: f64,
}

impl Volume {
    pub fn total(&self) -> f64 {
        self.intra_bytes + self.inter_bytes + self.inter_pod_bytes
    }
    pub(crate) fn scaled(self, k: f64) -> Volume {
        Volume { intra_bytes: k * self.intra_bytes, inter_bytes: k * self.inter_bytes, inter_pod_bytes: k * self.inter_pod_bytes }
    }
    pub(crate) fn plus(self, o: Volume) -> Volume {
        Volume {
            intra_bytes: self.intra_bytes + o.intra_bytes,
            inter_bytes: self.inter_bytes + o.inter_bytes,
            inter_pod_bytes: self.inter_pod_bytes + o.inter_pod_bytes,
        }
    }
}

impl Interconnect {
    /// A network of nodes and no tier above them (every node in one pod).
    pub fn two_tier(intra_bytes_per_s: f64, chips_per_node: u32, inter_bytes_per_s: f64) -> Interconnect {
        Interconnect {
            intra_bytes_per_s,
            chips_per_node,
            inter_bytes_per_s,
            chips_per_pod: u32::MAX,
            inter_pod_bytes_per_s: inter_bytes_per_s,
        }
    }

    /// Nodes in one pod (at least 1).
    fn nodes_per_pod(&self) -> u32 {
        (self.chips_per_pod / self.chips_per_node.max(1)).max(1)
    }

    /// Bytes each chip moves in a ring all-gather (or reduce-scatter) whose whole tensor is
    /// `bytes`, over a group of `n` chips with `per_node` of them in each node, the group's nodes
    /// adjacent (so a pod holds `per_node` of its chips in each of its nodes): see the module docs.
    /// A group whose inner dimensions span several nodes (one chip every other node) has fewer
    /// chips in each pod than this assumes; [`Interconnect::all_gather_tiers`] takes them.
    pub fn all_gather(&self, bytes: f64, n: u32, per_node: u32) -> Volume {
        let n = n.max(1);
        let k = per_node.clamp(1, n);
        let per_pod = u64::from(k) * u64::from(self.nodes_per_pod());
        self.all_gather_tiers(bytes, n, k, per_pod.min(u64::from(n)) as u32)
    }

    /// [`Interconnect::all_gather`] with the group's chips per pod given: `per_node` of its `n`
    /// chips in each node and `per_pod` in each pod (both clamped to the group; a group that does
    /// not fill whole nodes or pods is spread evenly over the fewest that hold it). Each chip
    /// moves `(1 - 1/k) S` inside its node, `(1/k - 1/q) S` between the nodes of its pod and
    /// `(1/q - 1/n) S` between pods, `k` and `q` the group's chips per node and per pod.
    pub fn all_gather_tiers(&self, bytes: f64, n: u32, per_node: u32, per_pod: u32) -> Volume {
        let n = n.max(1);
        let per_pod = per_pod.clamp(1, n);
        let per_node = per_node.clamp(1, per_pod);
        // Even spread: q = n / ceil(n / per_pod) chips per pod, k = q / ceil(q / per_node) per node.
        let pods = n.div_ceil(per_pod);
        let q = f64::from(n) / f64::from(pods);
        let nodes_in_pod = (q / f64::from(per_node)).ceil();
        let k = q / nodes_in_pod;
        let n = f64::from(n);
        Volume {
            intra_bytes: (1.0 - 1.0 / k) * bytes,
            inter_bytes: (1.0 / k - 1.0 / q) * bytes,
            inter_pod_bytes: (1.0 / q - 1.0 / n) * bytes,
        }
    }

    /// An all-reduce: a reduce-scatter and an all-gather (hierarchically: each tier's ring
    /// all-reduces the share the tier below left).
    pub fn all_reduce(&self, bytes: f64, n: u32, per_node: u32) -> Volume {
        self.all_gather(bytes, n, per_node).scaled(2.0)
    }

    /// Seconds to move `v`: each tier at its bandwidth, one after the other.
    pub fn seconds(&self, v: Volume) -> f64 {
        let part = |bytes: f64, rate: f64| if bytes > 0.0 { bytes / rate } else { 0.0 };
        part(v.intra_bytes, self.intra_bytes_per_s)
            + part(v.inter_bytes, self.inter_bytes_per_s)
            + part(v.inter_pod_bytes, self.inter_pod_bytes_per_s)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_collectives_by_hand() {
        let one_node = Interconnect::two_tier(100.0, 8, 10.0);
        // 2 x 3/4 x 400 bytes inside the node, 6 s at 100 B/s; an all-gather half of it.
        assert_eq!(one_node.all_reduce(400.0, 4, 4), Volume { intra_bytes: 600.0, inter_bytes: 0.0, inter_pod_bytes: 0.0 });
        assert_eq!(one_node.seconds(one_node.all_reduce(400.0, 4, 4)), 6.0);
        assert_eq!(one_node.all_gather(400.0, 4, 4).total(), 300.0);
        assert_eq!(one_node.all_reduce(400.0, 1, 1).total(), 0.0);
    }

    /// A group of 64 chips over three tiers: nodes of 8 chips at 100 B/s, pods of 4 nodes (32
    /// chips) at 10 B/s per chip between nodes, 1 B/s per chip between pods.
    #[test]
    fn an_all_gather_that_spans_three_tiers_by_hand() {
        let ic = Interconnect {
            intra_bytes_per_s: 100.0,
            chips_per_node: 8,
            inter_bytes_per_s: 10.0,
            chips_per_pod: 32,
            inter_pod_bytes_per_s: 1.0,
        };
        // S = 6400 bytes, n = 64, k = 8 per node, q = 32 per pod (2 pods):
        // intra (1 - 1/8) 6400 = 5600 (a ring of 8 over the whole tensor),
        // inter (1/8 - 1/32) 6400 = 600 (a ring of 4 nodes over each chip's 800-byte share: 3/4 x 800),
        // inter-pod (1/32 - 1/64) 6400 = 100 (a ring of 2 pods over the 200-byte share: 1/2 x 200);
        // 6300 = 63/64 x 6400 in all, as a flat ring.
        let v = ic.all_gather(6400.0, 64, 8);
        assert_eq!(v, Volume { intra_bytes: 5600.0, inter_bytes: 600.0, inter_pod_bytes: 100.0 });
        assert_eq!(v.total(), 6300.0);
        // 5600/100 + 600/10 + 100/1 = 56 + 60 + 100 = 216 s; an all-reduce twice each tier.
        assert_eq!(ic.seconds(v), 216.0);
        assert_eq!(ic.seconds(ic.all_reduce(6400.0, 64, 8)), 432.0);
        // One chip of the group per node (TP fills each node): k = 1, q = 4 per pod, 16 pods:
        // nothing inside the node, (1 - 1/4) 6400 = 4800 between nodes, (1/4 - 1/64) 6400 = 1500
        // between pods; 480 + 1500 = 1980 s.
        let dp = ic.all_gather(6400.0, 64, 1);
        assert_eq!(dp, Volume { intra_bytes: 0.0, inter_bytes: 4800.0, inter_pod_bytes: 1500.0 });
        assert_eq!(ic.seconds(dp), 1980.0);
        // Chips per pod given (a group strided over every other node: 2 per pod): (1 - 1/2) 6400
        // = 3200 between nodes, (1/2 - 1/64) 6400 = 3100 between pods.
        assert_eq!(
            ic.all_gather_tiers(6400.0, 64, 1, 2),
            Volume { intra_bytes: 0.0, inter_bytes: 3200.0, inter_pod_bytes: 3100.0 }
        );
        // Inside one pod the third tier carries nothing: 32 chips, 4 nodes of 8.
        assert_eq!(ic.all_gather(3200.0, 32, 8), Volume { intra_bytes: 2800.0, inter_bytes: 300.0, inter_pod_bytes: 0.0 });
    }

    /// A group that does not fill whole nodes is spread over the fewest that hold it.
    #[test]
    fn a_group_that_does_not_fill_its_nodes_is_spread_evenly() {
        // PaLM: 6,144 TPU v4 chips on slices (nodes) of at most 4,096: two slices of 3,072, so
        // with S = 6144 bytes each chip moves (1 - 1/3072) S = 6142 over ICI and (1/3072 -
        // 1/6144) S = 1 over DCN (a ring of 2 slices over its 2-byte share), not 1/2 (one slice
        // of 4,096 and a half).
        let v4 = Interconnect::two_tier(2.7e11, 4096, 6.25e9);
        let v = v4.all_gather(6144.0, 6144, 4096);
        assert!(
            (v.intra_bytes - 6142.0).abs() < 1e-9 && (v.inter_bytes - 1.0).abs() < 1e-12 && v.inter_pod_bytes == 0.0,
            "{v:?}"
        );
        // 12 chips on nodes of 8: two nodes of 6, (1 - 1/6) 1200 = 1000 inside, (1/6 - 1/12) 1200
        // = 100 between them.
        let nv = Interconnect::two_tier(100.0, 8, 10.0);
        let v = nv.all_gather(1200.0, 12, 8);
        assert!(
            (v.intra_bytes - 1000.0).abs() < 1e-9 && (v.inter_bytes - 100.0).abs() < 1e-9 && v.inter_pod_bytes == 0.0,
            "{v:?}"
        );
    }
}
