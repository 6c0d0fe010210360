//! The chip-to-chip network as collective communication sees it ([`Interconnect`]: chips in
//! nodes, one bandwidth inside a node and one between nodes) and the bytes a collective moves
//! through each chip's links ([`Volume`]). Shared by the hardware description, which builds an
//! [`Interconnect`] from a file's `[interconnect]` section, and by the shardings, which price their
//! collectives on it.
//!
//! Ring collectives (Patarasuk & Yuan 2009) over a group of `n` chips, `S` the bytes of the whole
//! tensor: an all-gather or a reduce-scatter moves `(n-1)/n S` through each chip's links, an
//! all-reduce twice that. A group that spans nodes runs hierarchically (NCCL's and Megatron's
//! intra-node / inter-node rings): with `k` of its chips in each of `m` nodes, each chip moves
//! `(k-1)/k S` over the intra-node network and `(m-1)/m S / k` over its own link to the other
//! nodes, per all-gather or reduce-scatter.

/// The chip-to-chip network, as ring collectives see it: chips in nodes (a TPU pod's torus is one
/// node), one bandwidth inside a node and one from each chip to the other nodes.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interconnect {
    /// Bytes per second one chip sends (and at the same time receives) to chips of its node in a
    /// ring collective. Unit: bytes/s.
    pub intra_bytes_per_s: f64,
    /// Chips that share the intra-node network.
    pub chips_per_node: u32,
    /// Bytes per second one chip sends (and receives) to chips of other nodes. Unit: bytes/s.
    pub inter_bytes_per_s: f64,
}

/// Bytes one chip moves in a collective: over the intra-node network and between nodes.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Volume {
    pub intra_bytes: f64,
    pub inter_bytes: f64,
}

impl Volume {
    pub fn total(&self) -> f64 {
        self.intra_bytes + self.inter_bytes
    }
    pub(crate) fn scaled(self, k: f64) -> Volume {
        Volume { intra_bytes: k * self.intra_bytes, inter_bytes: k * self.inter_bytes }
    }
    pub(crate) fn plus(self, o: Volume) -> Volume {
        Volume { intra_bytes: self.intra_bytes + o.intra_bytes, inter_bytes: self.inter_bytes + o.inter_bytes }
    }
}

impl Interconnect {
    /// Bytes each chip moves in a ring all-gather (or reduce-scatter) whose whole tensor is
    /// `bytes`, over a group of `n` chips with `per_node` of them in each node: `(k-1)/k S` inside
    /// the node and `(m-1)/m S / k` between the `m = n / k` nodes (see the module docs).
    pub fn all_gather(&self, bytes: f64, n: u32, per_node: u32) -> Volume {
        let k = per_node.clamp(1, n.max(1));
        let m = f64::from(n.max(1)) / f64::from(k);
        Volume { intra_bytes: ring_fraction(k) * bytes, inter_bytes: (m - 1.0) / m * bytes / f64::from(k) }
    }

    /// An all-reduce: a reduce-scatter and an all-gather (hierarchically: the inter-node part is
    /// an all-reduce of each chip's 1/k share).
    pub fn all_reduce(&self, bytes: f64, n: u32, per_node: u32) -> Volume {
        self.all_gather(bytes, n, per_node).scaled(2.0)
    }

    /// Seconds to move `v`: each network at its bandwidth, one after the other.
    pub fn seconds(&self, v: Volume) -> f64 {
        let part = |bytes: f64, rate: f64| if bytes > 0.0 { bytes / rate } else { 0.0 };
        part(v.intra_bytes, self.intra_bytes_per_s) + part(v.inter_bytes, self.inter_bytes_per_s)
    }
}

/// `(n-1)/n`: the share of a tensor each chip of a ring of `n` sends in an all-gather.
#[inline]
fn ring_fraction(n: u32) -> f64 {
    let n = f64::from(n.max(1));
    (n - 1.0) / n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ring_collectives_by_hand() {
        let one_node = Interconnect { intra_bytes_per_s: 100.0, chips_per_node: 8, inter_bytes_per_s: 10.0 };
        // 2 x 3/4 x 400 bytes inside the node, 6 s at 100 B/s; an all-gather half of it.
        assert_eq!(one_node.all_reduce(400.0, 4, 4), Volume { intra_bytes: 600.0, inter_bytes: 0.0 });
        assert_eq!(one_node.seconds(one_node.all_reduce(400.0, 4, 4)), 6.0);
        assert_eq!(one_node.all_gather(400.0, 4, 4).total(), 300.0);
        assert_eq!(one_node.all_reduce(400.0, 1, 1).total(), 0.0);
    }
}
