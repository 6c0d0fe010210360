//! A chip as the cost model sees it, built from the figures of a hardware file
//! (`hardware/*.toml`; the Python layer reads the file and hands the numbers over): memory, the
//! datasheet figures, the step-time model (a datasheet roofline until the chip is calibrated, then
//! a calibrated model from [`crate::step_time::CALIBRATED_MODELS`]), the chip-to-chip network and
//! the price. Every range a hardware figure must lie in is written here, with its unit; fields are
//! named as in the file (`chip.hbm_bytes`), so errors point at the key to fix.

use crate::error::{Error, Range, Result};
use crate::network::Interconnect;
use crate::step_time::{calibrated_model, CalibratedModel, StepTimeModel};

/// Largest number of chips any request may name.
pub const MAX_CHIPS: u32 = 1 << 20;

// [chip]: bounds catch unit mistakes (GB/s where bytes/s are due, GiB where bytes are).
pub const PEAK_FLOPS: Range = Range::new(1e9, 1e17, "FLOP/s");
pub const HBM_BYTES: Range = Range::new(1_048_576.0, 1.125_899_906_842_624e15, "bytes");
pub const HBM_BYTES_PER_S: Range = Range::new(1e9, 1e14, "bytes/s");
pub const USABLE_FRACTION: Range = Range::new(0.01, 1.0, "a fraction");
// [step_time]
pub const EFFICIENCY: Range = Range::new(0.001, 1.0, "a fraction of peak");
pub const OVERHEAD_S: Range = Range::new(0.0, 3600.0, "seconds");
// [interconnect]
pub const LINK_BYTES_PER_S: Range = Range::new(1e6, 1e14, "bytes/s");
pub const LINKS_PER_CHIP: Range = Range::new(1.0, 64.0, "links");
pub const NETWORK_MAX_CHIPS: Range = Range::new(1.0, 1e6, "chips");
// [price]
pub const USD_PER_CHIP_HOUR: Range = Range::new(0.001, 1000.0, "USD per chip-hour");

/// Every numeric key of a hardware file with its accepted range (documentation and exports; the
/// checks below use the same constants).
pub const RANGES: [(&str, Range); 14] = [
    ("chip.peak_bf16_flops_per_s", PEAK_FLOPS),
    ("chip.hbm_bytes", HBM_BYTES),
    ("chip.hbm_bytes_per_s", HBM_BYTES_PER_S),
    ("chip.usable_hbm_fraction", USABLE_FRACTION),
    ("step_time.flops_efficiency", EFFICIENCY),
    ("step_time.attention_efficiency", EFFICIENCY),
    ("step_time.bandwidth_efficiency", EFFICIENCY),
    ("step_time.overhead_s", OVERHEAD_S),
    ("interconnect.link_bytes_per_s", LINK_BYTES_PER_S),
    ("interconnect.links_per_chip", LINKS_PER_CHIP),
    ("interconnect.max_chips", NETWORK_MAX_CHIPS),
    ("interconnect.inter_node_bytes_per_s", LINK_BYTES_PER_S),
    ("interconnect.inter_pod_bytes_per_s", LINK_BYTES_PER_S),
    ("price.usd_per_chip_hour", USD_PER_CHIP_HOUR),
];

/// How the datasheet roofline combines compute and memory time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Roofline {
    /// `FLOPs / rate + bytes / bandwidth`: no overlap of compute and traffic.
    Sum,
    /// `max(FLOPs / rate, bytes / bandwidth)`: perfect overlap (a lower bound).
    Max,
}

impl Roofline {
    pub const NAMES: [&'static str; 2] = ["roofline_sum", "roofline_max"];
    pub fn name(self) -> &'static str {
        match self {
            Roofline::Sum => "roofline_sum",
            Roofline::Max => "roofline_max",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "roofline_sum" => Ok(Roofline::Sum),
            "roofline_max" => Ok(Roofline::Max),
            _ => Err(Error::invalid("step_time.model", format!("'{s}'"), "one of roofline_sum, roofline_max")),
        }
    }
}

/// Relative step-time error to assume for a chip without a calibration: the median absolute
/// percentage error, on published training steps, of the datasheet rooflines the three GPU files
/// carried before they were calibrated from them (a100_40gb 20.5%, a100_80gb 26.2%, h100_sxm
/// 36.0%; README, "Calibration"); the middle one. The transferred efficiencies the uncalibrated
/// files use now err 6.9-15.8% on those same GPUs, but how they transfer to another chip is
/// untested, so the larger figure.
pub const UNCALIBRATED_STEP_TIME_ERROR: f64 = 0.262;

/// The file's `[chip]` peaks and `[step_time]` efficiencies: the step-time model of a chip that has
/// not been measured (achievable rate = efficiency x peak).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Datasheet {
    /// Dense bf16 peak. Unit: FLOP/s.
    pub peak_bf16_flops_per_s: f64,
    /// HBM bandwidth. Unit: bytes/s.
    pub hbm_bytes_per_s: f64,
    pub roofline: Roofline,
    /// Achievable fraction of the FLOP/s peak in dense matmuls.
    pub flops_efficiency: f64,
    /// Achievable fraction of the FLOP/s peak in the attention-score matmuls (attention kernels
    /// run far below dense GEMMs); `None`: the same as `flops_efficiency`.
    pub attention_efficiency: Option<f64>,
    /// Achievable fraction of the bandwidth.
    pub bandwidth_efficiency: f64,
    /// Fixed seconds per step.
    pub overhead_s: f64,
}

impl Datasheet {
    pub fn validate(&self) -> Result<()> {
        PEAK_FLOPS.check("chip.peak_bf16_flops_per_s", self.peak_bf16_flops_per_s)?;
        HBM_BYTES_PER_S.check("chip.hbm_bytes_per_s", self.hbm_bytes_per_s)?;
        EFFICIENCY.check("step_time.flops_efficiency", self.flops_efficiency)?;
        if let Some(e) = self.attention_efficiency {
            EFFICIENCY.check("step_time.attention_efficiency", e)?;
        }
        EFFICIENCY.check("step_time.bandwidth_efficiency", self.bandwidth_efficiency)?;
        OVERHEAD_S.check("step_time.overhead_s", self.overhead_s)?;
        Ok(())
    }

    /// Achievable FLOP/s of dense and attention matmuls, and bytes/s.
    fn rates(&self) -> (f64, f64, f64) {
        let peak = self.peak_bf16_flops_per_s;
        (
            peak * self.flops_efficiency,
            peak * self.attention_efficiency.unwrap_or(self.flops_efficiency),
            self.hbm_bytes_per_s * self.bandwidth_efficiency,
        )
    }

    /// The roofline as a step-time model: `Rates` at efficiency x peak for the sum (each kind of
    /// work at its achievable rate, no overlap), `RooflineMax` for the max.
    pub fn model(&self) -> StepTimeModel {
        let (matmul, attention, bytes_per_s) = self.rates();
        match self.roofline {
            Roofline::Sum => StepTimeModel::Rates {
                s_per_matmul_flop: 1.0 / matmul,
                s_per_attention_flop: 1.0 / attention,
                s_per_byte: 1.0 / bytes_per_s,
                overhead_s: self.overhead_s,
            },
            Roofline::Max => {
                StepTimeModel::RooflineMax { flops_per_s: matmul, memcpy_bytes_per_s: bytes_per_s, overhead_s: self.overhead_s }
            }
        }
    }

    /// The roofline's formula with its numbers.
    pub fn formula(&self) -> String {
        let (f, b) = (self.flops_efficiency, self.bandwidth_efficiency);
        let peak = self.peak_bf16_flops_per_s;
        let combined = match self.roofline {
            Roofline::Sum => {
                let att = self.attention_efficiency.unwrap_or(f);
                format!(
                    "matmul FLOPs / ({f} x {peak:.4e} FLOP/s) + attention FLOPs / ({att} x {peak:.4e} FLOP/s) \
                     + MEMCPY / ({b} x {:.4e} B/s)",
                    self.hbm_bytes_per_s
                )
            }
            Roofline::Max => format!("max(FLOPs / ({f} x {peak:.4e} FLOP/s), MEMCPY / ({b} x {:.4e} B/s))", self.hbm_bytes_per_s),
        };
        format!("{combined} + {} s (uncalibrated datasheet roofline)", self.overhead_s)
    }
}

/// How an interconnect's link figure is quoted, which decides the bandwidth of a collective.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Topology {
    /// TPU v4/v5p: 6 one-way links per chip, a bidirectional ring in each dimension.
    Torus3d,
    /// TPU v5e/v6e: 4 one-way links per chip.
    Torus2d,
    /// NVLink through NVSwitch: the per-GPU figure ("900 GB/s") counts both directions.
    NvlinkSwitch,
    /// AMD Infinity Fabric: per-GPU figure counting both directions.
    InfinityFabric,
}

impl Topology {
    pub const NAMES: [&'static str; 4] = ["3d_torus", "2d_torus", "nvlink_switch", "infinity_fabric"];
    pub fn name(self) -> &'static str {
        match self {
            Topology::Torus3d => "3d_torus",
            Topology::Torus2d => "2d_torus",
            Topology::NvlinkSwitch => "nvlink_switch",
            Topology::InfinityFabric => "infinity_fabric",
        }
    }
    pub fn parse(s: &str) -> Result<Self> {
        Self::NAMES
            .iter()
            .position(|n| *n == s)
            .map(|i| [Topology::Torus3d, Topology::Torus2d, Topology::NvlinkSwitch, Topology::InfinityFabric][i])
            .ok_or_else(|| {
                Error::invalid("interconnect.topology", format!("'{s}'"), &format!("one of {}", Self::NAMES.join(", ")))
            })
    }
    /// Whether the file's link figure counts both directions (switched fabrics quote a per-GPU
    /// bidirectional total; TPU torus links are quoted one-way per link).
    pub fn figure_counts_both_directions(self) -> bool {
        matches!(self, Topology::NvlinkSwitch | Topology::InfinityFabric)
    }
}

/// The file's `[interconnect]`: the chip-to-chip network, in up to three tiers (see
/// [`crate::network`]): nodes (`chips_per_node` joined by the links above), pods of nodes
/// (`chips_per_pod`, at `inter_node_bytes_per_s` per chip) and the network between pods
/// (`inter_pod_bytes_per_s` per chip). `max_chips` is the largest system the description covers.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Network {
    /// Bytes/s of one link, as the vendor quotes it (see [`Topology`]).
    pub link_bytes_per_s: f64,
    pub links_per_chip: f64,
    pub topology: Topology,
    /// Most chips the network joins.
    pub max_chips: u32,
    /// Chips in one node, joined by the links above (GPUs: 8 per NVLink/NVSwitch node, 72 in an
    /// NVL72 rack; TPUs: the largest ICI slice, beyond which slices talk over the data-centre
    /// network); `None`: every chip is in one network.
    pub chips_per_node: Option<u32>,
    /// Bytes/s each way from one chip to chips of other nodes (its share of the node's network
    /// cards: 8 x 400 Gb/s InfiniBand NICs for 8 GPUs = 5e10 per GPU; a TPU chip's DCN share).
    /// Needed when a node holds fewer chips than `max_chips`.
    pub inter_node_bytes_per_s: Option<f64>,
    /// Chips of one pod: whole nodes on one non-blocking fabric at `inter_node_bytes_per_s` per
    /// chip (Meta's 3,072-GPU pods; Dubey et al. 2024, section 3.3.1); `None`: every node in one.
    pub chips_per_pod: Option<u32>,
    /// Bytes/s each way from one chip to chips of other pods (its network card's share of an
    /// oversubscribed tier: 5e10 / 7 at Meta's 1:7). Needed when a pod holds fewer chips than
    /// `max_chips`.
    pub inter_pod_bytes_per_s: Option<f64>,
}

impl Network {
    pub fn validate(&self) -> Result<()> {
        LINK_BYTES_PER_S.check("interconnect.link_bytes_per_s", self.link_bytes_per_s)?;
        LINKS_PER_CHIP.check("interconnect.links_per_chip", self.links_per_chip)?;
        NETWORK_MAX_CHIPS.check("interconnect.max_chips", f64::from(self.max_chips))?;
        if let Some(k) = self.chips_per_node {
            if k == 0 || k > self.max_chips {
                return Err(Error::invalid(
                    "interconnect.chips_per_node",
                    k,
                    &format!("an integer in [1, interconnect.max_chips = {}]", self.max_chips),
                ));
            }
        }
        match self.inter_node_bytes_per_s {
            Some(b) => {
                LINK_BYTES_PER_S.check("interconnect.inter_node_bytes_per_s", b)?;
            }
            None if self.chips_per_node.is_some_and(|k| k < self.max_chips) => {
                return Err(Error::invalid(
                    "interconnect.inter_node_bytes_per_s",
                    "missing",
                    &format!("{} (needed when chips_per_node < max_chips)", LINK_BYTES_PER_S.expected()),
                ));
            }
            None => {}
        }
        self.validate_pods()
    }

    /// The pod tier: whole nodes, more than one, at most `max_chips`; its bandwidth when pods
    /// hold fewer chips than `max_chips`, and not without pods.
    fn validate_pods(&self) -> Result<()> {
        let Some(pod) = self.chips_per_pod else {
            return match self.inter_pod_bytes_per_s {
                Some(b) => Err(Error::invalid(
                    "interconnect.inter_pod_bytes_per_s",
                    b,
                    "absent without interconnect.chips_per_pod (the pods it joins)",
                )),
                None => Ok(()),
            };
        };
        let node = self.chips_per_node.unwrap_or(self.max_chips);
        if self.chips_per_node.is_none() || pod <= node || pod > self.max_chips || pod % node != 0 {
            return Err(Error::invalid(
                "interconnect.chips_per_pod",
                pod,
                &format!(
                    "a multiple of interconnect.chips_per_node (= {}, needed with pods) above it, at most interconnect.max_chips = {}",
                    self.chips_per_node.map_or("missing".to_string(), |k| k.to_string()),
                    self.max_chips
                ),
            ));
        }
        match self.inter_pod_bytes_per_s {
            Some(b) => LINK_BYTES_PER_S.check("interconnect.inter_pod_bytes_per_s", b).map(|_| ()),
            None if pod < self.max_chips => Err(Error::invalid(
                "interconnect.inter_pod_bytes_per_s",
                "missing",
                &format!("{} (needed when chips_per_pod < max_chips)", LINK_BYTES_PER_S.expected()),
            )),
            None => Ok(()),
        }
    }

    /// The network as collectives see it: inside a node, ring bandwidth `links x link` per chip,
    /// halved when the figure counts both directions (a collective sends and receives at once);
    /// between nodes, `inter_node_bytes_per_s`; between pods, `inter_pod_bytes_per_s`.
    pub fn interconnect(&self) -> Interconnect {
        let total = self.link_bytes_per_s * self.links_per_chip;
        let each_way = if self.topology.figure_counts_both_directions() { total / 2.0 } else { total };
        let inter = self.inter_node_bytes_per_s.unwrap_or(each_way);
        Interconnect {
            intra_bytes_per_s: each_way,
            chips_per_node: self.chips_per_node.unwrap_or(self.max_chips),
            inter_bytes_per_s: inter,
            chips_per_pod: self.chips_per_pod.unwrap_or(u32::MAX),
            inter_pod_bytes_per_s: self.inter_pod_bytes_per_s.unwrap_or(inter),
        }
    }
}

/// The number format dense matmuls run in (Micikevicius et al. 2022, FP8 training; Transformer
/// Engine's FP8 GEMMs, MaxText's AQT int8): the rest of the step (attention scores, elementwise
/// work, the optimizer) stays in its own precision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum MatmulPrecision {
    #[default]
    Bf16,
    Fp8,
    Int8,
    Fp4,
}

impl MatmulPrecision {
    pub const NAMES: [&'static str; 4] = ["bf16", "fp8", "int8", "fp4"];
    pub fn name(self) -> &'static str {
        Self::NAMES[self as usize]
    }
    pub fn parse(s: &str) -> Result<Self> {
        match s {
            "bf16" => Ok(MatmulPrecision::Bf16),
            "fp8" => Ok(MatmulPrecision::Fp8),
            "int8" => Ok(MatmulPrecision::Int8),
            "fp4" => Ok(MatmulPrecision::Fp4),
            _ => Err(Error::invalid("matmul", format!("'{s}'"), "'bf16', 'fp8', 'int8' or 'fp4'")),
        }
    }
}

/// Seconds per dense matmul FLOP in each low precision (fp8, int8, fp4, in that order) relative
/// to bf16 (dimensionless): a calibration's where one fitted it, else the datasheet's peak ratio
/// (`peak_bf16 / peak_fp8`, an optimistic bound: real FP8 GEMMs gain less); `None` where the chip
/// has no such format.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct MatmulTimeFactors {
    pub datasheet: [Option<f64>; 3],
    pub calibrated: [Option<f64>; 3],
}

impl MatmulTimeFactors {
    /// The factor of `precision` (1 for bf16), the calibrated one first.
    pub fn get(&self, precision: MatmulPrecision) -> Option<f64> {
        match precision {
            MatmulPrecision::Bf16 => Some(1.0),
            p => {
                let i = p as usize - 1;
                self.calibrated[i].or(self.datasheet[i])
            }
        }
    }
}

/// Accepted matmul time factors: a low-precision matmul between 20x faster and 1.5x slower than
/// bf16 (dequantization overheads can make small int8 matmuls slower).
pub const MATMUL_TIME_FACTOR: Range = Range::new(0.05, 1.5, "seconds per FLOP relative to bf16");

/// One accelerator chip, as the cost model sees it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Hardware {
    /// Device memory (HBM) per chip. Unit: bytes.
    pub hbm_bytes: f64,
    /// Fraction of `hbm_bytes` a training step may plan to use (runtime, allocator, workspaces
    /// take the rest). Dimensionless, in [0.01, 1].
    pub usable_hbm_fraction: f64,
    pub datasheet: Datasheet,
    /// The calibrated model in use (`None`: the datasheet roofline).
    pub calibrated: Option<&'static CalibratedModel>,
    pub step_time: StepTimeModel,
    pub network: Option<Network>,
    /// Price of one chip for one hour (USD), when the file states one.
    pub usd_per_chip_hour: Option<f64>,
    /// Relative error of the step time: a calibration's cross-validated median error, or
    /// [`UNCALIBRATED_STEP_TIME_ERROR`] for a datasheet roofline. Ties in the search use it.
    pub step_time_error: f64,
    /// Dense matmuls in low precision, relative to bf16.
    pub matmul_time: MatmulTimeFactors,
}

/// Step-time errors a hardware file may state (0.01% to 1000%).
pub const STEP_TIME_ERROR_PCT: Range = Range::new(0.01, 1000.0, "percent").or_zero();

impl Hardware {
    /// A chip whose step time is its datasheet roofline; validated.
    pub fn from_datasheet(
        hbm_bytes: f64,
        usable_hbm_fraction: f64,
        datasheet: Datasheet,
        network: Option<Network>,
        usd_per_chip_hour: Option<f64>,
    ) -> Result<Hardware> {
        datasheet.validate()?;
        let hw = Hardware {
            hbm_bytes,
            usable_hbm_fraction,
            datasheet,
            calibrated: None,
            step_time: datasheet.model(),
            step_time_error: UNCALIBRATED_STEP_TIME_ERROR,
            network,
            usd_per_chip_hour,
            matmul_time: MatmulTimeFactors::default(),
        };
        hw.validate()?;
        Ok(hw)
    }

    /// The same chip with its datasheet's dense low-precision matmul peaks (FLOP/s or OP/s; `None`
    /// where the chip has no such format): each gives its factor `peak_bf16 / peak`, unless a
    /// calibration set it.
    pub fn with_matmul_peaks(&self, fp8: Option<f64>, int8: Option<f64>, fp4: Option<f64>) -> Result<Hardware> {
        let bf16 = self.datasheet.peak_bf16_flops_per_s;
        let ratio = |field: &str, peak: Option<f64>| -> Result<Option<f64>> {
            match peak {
                None => Ok(None),
                Some(p) => {
                    PEAK_FLOPS.check(field, p)?;
                    if p < bf16 {
                        return Err(Error::invalid(field, p, &format!("at least chip.peak_bf16_flops_per_s = {bf16:.4e}")));
                    }
                    Ok(Some(bf16 / p))
                }
            }
        };
        let datasheet = [
            ratio("chip.peak_fp8_flops_per_s", fp8)?,
            ratio("chip.peak_int8_ops_per_s", int8)?,
            ratio("chip.peak_fp4_flops_per_s", fp4)?,
        ];
        Ok(Hardware { matmul_time: MatmulTimeFactors { datasheet, ..self.matmul_time }, ..*self })
    }

    /// The same chip with a calibrated factor for `precision`'s matmuls (file key `field`), in
    /// [`MATMUL_TIME_FACTOR`].
    pub fn with_matmul_time_factor(&self, precision: MatmulPrecision, field: &str, factor: f64) -> Result<Hardware> {
        MATMUL_TIME_FACTOR.check(field, factor)?;
        if precision == MatmulPrecision::Bf16 {
            return Err(Error::invalid(field, "bf16", "fp8, int8 or fp4 (bf16 is the reference)"));
        }
        let mut m = self.matmul_time;
        m.calibrated[precision as usize - 1] = Some(factor);
        Ok(Hardware { matmul_time: m, ..*self })
    }

    /// Seconds per dense matmul FLOP in `precision` relative to bf16, or an error when the chip has
    /// no such format (its file gives no peak for it).
    pub fn matmul_time_factor(&self, precision: MatmulPrecision) -> Result<f64> {
        let key = match precision {
            MatmulPrecision::Bf16 | MatmulPrecision::Fp8 => "chip.peak_fp8_flops_per_s",
            MatmulPrecision::Int8 => "chip.peak_int8_ops_per_s",
            MatmulPrecision::Fp4 => "chip.peak_fp4_flops_per_s",
        };
        self.matmul_time.get(precision).ok_or_else(|| {
            Error::invalid("matmul", precision.name(), &format!("a precision this chip has (its file gives no {key})"))
        })
    }

    /// The same chip with a calibrated step-time model: `model` names one of
    /// [`crate::step_time::CALIBRATED_MODELS`], `coefficient` gives each coefficient by name
    /// (`None` when absent); `section` prefixes field names in errors (`calibration`).
    pub fn with_calibration(&self, model: &str, coefficient: impl Fn(&str) -> Option<f64>, section: &str) -> Result<Hardware> {
        let (m, step_time) = calibrated_model(model, coefficient, section)?;
        Ok(Hardware { calibrated: Some(m), step_time, ..*self })
    }

    /// The same chip with its datasheet roofline (the step-time model before any calibration).
    pub fn uncalibrated(&self) -> Hardware {
        Hardware {
            calibrated: None,
            step_time: self.datasheet.model(),
            step_time_error: UNCALIBRATED_STEP_TIME_ERROR,
            matmul_time: MatmulTimeFactors { calibrated: [None; 3], ..self.matmul_time },
            ..*self
        }
    }

    /// The same chip with `pct` percent as its step time's error (a calibration's cross-validated
    /// median error, the file's key `field`), checked against [`STEP_TIME_ERROR_PCT`].
    pub fn with_step_time_error_pct(&self, field: &str, pct: f64) -> Result<Hardware> {
        STEP_TIME_ERROR_PCT.check(field, pct)?;
        Ok(Hardware { step_time_error: pct / 100.0, ..*self })
    }

    /// Bytes a step may use. Unit: bytes.
    #[inline]
    pub fn usable_hbm_bytes(&self) -> f64 {
        self.hbm_bytes * self.usable_hbm_fraction
    }

    /// Collective bandwidth of the network (`None` without one).
    pub fn interconnect(&self) -> Option<Interconnect> {
        self.network.map(|n| n.interconnect())
    }

    /// Most chips this hardware trains on together (1 without a network).
    pub fn max_chips(&self) -> u32 {
        self.network.map_or(1, |n| n.max_chips)
    }

    /// `interconnect.max_chips` or `chips_per_node` as given (any integer) as the core's `u32`;
    /// outside [`NETWORK_MAX_CHIPS`] the error [`Network::validate`] would give.
    pub fn network_count(field: &str, v: i128) -> Result<u32> {
        NETWORK_MAX_CHIPS.check(field, v as f64)?;
        Ok(v as u32)
    }

    /// A chip count as given (any integer) as the core's `u32`, when in [1, [`MAX_CHIPS`]].
    pub fn chip_count(chips: i128) -> Result<u32> {
        crate::error::integer_in("chips", chips, 1, MAX_CHIPS.into())
    }

    /// `Ok` when `chips` chips of this hardware can train together.
    pub fn check_chips(&self, chips: u32) -> Result<()> {
        Hardware::chip_count(i128::from(chips))?;
        match self.network {
            None if chips > 1 => Err(Error::invalid(
                "chips",
                chips,
                "1: more than one chip needs an [interconnect] section (link_bytes_per_s, links_per_chip, topology, max_chips)",
            )),
            Some(n) if chips > n.max_chips => {
                Err(Error::invalid("chips", chips, &format!("at most interconnect.max_chips = {}", n.max_chips)))
            }
            _ => Ok(()),
        }
    }

    /// The step-time formula with its numbers, for display.
    pub fn step_time_formula(&self) -> String {
        match self.calibrated {
            None => self.datasheet.formula(),
            Some(m) => format!("{} (calibrated, {})", self.step_time.formula(), m.name),
        }
    }

    pub fn validate(&self) -> Result<()> {
        HBM_BYTES.check("chip.hbm_bytes", self.hbm_bytes)?;
        USABLE_FRACTION.check("chip.usable_hbm_fraction", self.usable_hbm_fraction)?;
        self.datasheet.validate()?;
        if let Some(n) = self.network {
            n.validate()?;
        }
        if let Some(p) = self.usd_per_chip_hour {
            USD_PER_CHIP_HOUR.check("price.usd_per_chip_hour", p)?;
        }
        self.step_time.validate()
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// An H100-like chip (80e9 B, 90% usable) with step-time model `model`, for tests.
    pub fn chip(hbm_bytes: f64, model: StepTimeModel) -> Hardware {
        let datasheet = Datasheet {
            peak_bf16_flops_per_s: 9.894e14,
            hbm_bytes_per_s: 3.35e12,
            roofline: Roofline::Sum,
            flops_efficiency: 0.79,
            attention_efficiency: None,
            bandwidth_efficiency: 0.875,
            overhead_s: 0.0,
        };
        let hw = Hardware::from_datasheet(hbm_bytes, 0.9, datasheet, None, None).unwrap();
        Hardware { step_time: model, ..hw }
    }

    #[test]
    fn datasheet_roofline_by_hand() {
        // 0.79 x 9.894e14 = 7.81626e14 FLOP/s; 0.875 x 3.35e12 = 2.93125e12 B/s; attention at
        // 0.2 x 9.894e14 = 1.9788e14 FLOP/s when given, else the matmul rate.
        let hw = chip(80e9, StepTimeModel::Linear { s_per_memcpy_byte: 1.0, s_per_flop: 1.0, overhead_s: 0.0 });
        let with_attention = Datasheet { attention_efficiency: Some(0.2), ..hw.datasheet };
        for (ds, attention) in [(hw.datasheet, 7.81626e14), (with_attention, 1.9788e14)] {
            match ds.model() {
                StepTimeModel::Rates { s_per_matmul_flop, s_per_attention_flop, s_per_byte, overhead_s } => {
                    assert!((1.0 / s_per_matmul_flop / 7.81626e14 - 1.0).abs() < 1e-12);
                    assert!((1.0 / s_per_attention_flop / attention - 1.0).abs() < 1e-12);
                    assert!((1.0 / s_per_byte / 2.93125e12 - 1.0).abs() < 1e-12);
                    assert_eq!(overhead_s, 0.0);
                }
                other => panic!("{other:?}"),
            }
        }
        let f = with_attention.formula();
        assert!(f.starts_with("matmul FLOPs / (0.79 x 9.8940e14 FLOP/s) + attention FLOPs / (0.2 x 9.8940e14 FLOP/s)"), "{f}");
    }

    #[test]
    fn ranges_name_the_file_key() {
        let hw = chip(80e9, StepTimeModel::Linear { s_per_memcpy_byte: 1e-12, s_per_flop: 0.0, overhead_s: 0.0 });
        let e = Hardware { hbm_bytes: 32.0, ..hw }.validate().unwrap_err().to_string();
        assert_eq!(e, "chip.hbm_bytes = 32 is invalid: expected bytes in [1.04858e+06, 1.1259e+15]");
        let bad = Datasheet { hbm_bytes_per_s: 3.35e3, ..hw.datasheet };
        assert!(bad.validate().unwrap_err().to_string().contains("expected bytes/s in [1e+09, 1e+14]"));
    }

    #[test]
    fn collective_bandwidth_from_links_by_hand() {
        // TPU v4: 6 one-way links of 4.5e10 B/s, all driven at once. NVLink 4's 9e11 B/s counts
        // both directions: 4.5e11 each way.
        let tpu = Network {
            link_bytes_per_s: 4.5e10,
            links_per_chip: 6.0,
            topology: Topology::Torus3d,
            max_chips: 4096,
            chips_per_node: None,
            inter_node_bytes_per_s: None,
            chips_per_pod: None,
            inter_pod_bytes_per_s: None,
        };
        assert_eq!(tpu.interconnect().intra_bytes_per_s, 2.7e11);
        assert_eq!(tpu.interconnect().chips_per_node, 4096);
        let nv = Network {
            link_bytes_per_s: 9e11,
            links_per_chip: 1.0,
            topology: Topology::NvlinkSwitch,
            max_chips: 8,
            chips_per_node: None,
            inter_node_bytes_per_s: None,
            chips_per_pod: None,
            inter_pod_bytes_per_s: None,
        };
        assert_eq!(nv.interconnect().intra_bytes_per_s, 4.5e11);
        // Nodes of 8 need the inter-node figure.
        let cluster = Network { max_chips: 4096, chips_per_node: Some(8), ..nv };
        assert!(cluster.validate().unwrap_err().to_string().starts_with("interconnect.inter_node_bytes_per_s = missing"));
        let cluster = Network { inter_node_bytes_per_s: Some(5e10), ..cluster };
        assert!(cluster.validate().is_ok());
        assert_eq!((cluster.interconnect().chips_per_node, cluster.interconnect().inter_bytes_per_s), (8, 5e10));
        assert_eq!(cluster.interconnect().chips_per_pod, u32::MAX);
        // Pods of 3,072 GPUs (384 nodes) need the bandwidth between pods, and whole nodes.
        let pods = Network { max_chips: 24_576, chips_per_pod: Some(3072), ..cluster };
        assert!(pods.validate().unwrap_err().to_string().starts_with("interconnect.inter_pod_bytes_per_s = missing"));
        let pods = Network { inter_pod_bytes_per_s: Some(5e10 / 7.0), ..pods };
        assert!(pods.validate().is_ok());
        let ic = pods.interconnect();
        assert_eq!(
            (ic.chips_per_node, ic.chips_per_pod, ic.inter_bytes_per_s, ic.inter_pod_bytes_per_s),
            (8, 3072, 5e10, 5e10 / 7.0)
        );
        let e = Network { chips_per_pod: Some(3076), ..pods }.validate().unwrap_err().to_string();
        assert!(
            e.starts_with(
                "interconnect.chips_per_pod = 3076 is invalid: expected a multiple of interconnect.chips_per_node (= 8"
            ),
            "{e}"
        );
        assert!(Network { chips_per_pod: Some(32_768), ..pods }.validate().is_err());
        assert!(Network { chips_per_pod: None, ..pods }.validate().unwrap_err().to_string().contains("absent without"));
        assert!(Network { chips_per_node: None, ..pods }.validate().is_err());
        assert_eq!(Topology::parse("2d_torus").unwrap(), Topology::Torus2d);
        assert!(Topology::parse("ring").unwrap_err().to_string().contains("one of 3d_torus"));
    }

    #[test]
    fn chip_counts_are_checked_against_the_network() {
        let hw = chip(80e9, StepTimeModel::Linear { s_per_memcpy_byte: 1e-12, s_per_flop: 0.0, overhead_s: 0.0 });
        assert!(hw.check_chips(1).is_ok());
        assert!(hw.check_chips(2).unwrap_err().to_string().contains("needs an [interconnect] section"));
        let nv = Network {
            link_bytes_per_s: 9e11,
            links_per_chip: 1.0,
            topology: Topology::NvlinkSwitch,
            max_chips: 8,
            chips_per_node: None,
            inter_node_bytes_per_s: None,
            chips_per_pod: None,
            inter_pod_bytes_per_s: None,
        };
        let hw = Hardware { network: Some(nv), ..hw };
        assert!(hw.check_chips(8).is_ok());
        assert!(hw.check_chips(16).unwrap_err().to_string().contains("at most interconnect.max_chips = 8"));
        assert!(hw.check_chips(0).is_err());
    }
}
