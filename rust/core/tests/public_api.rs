//! The core's public API as a user of the crate meets it (no access to private items): a chip
//! from its datasheet, an architecture from its three required fields, a prediction, a search and
//! its explanation facts, the loss term by term. Expected values are by hand or from the sources.

use timescale_core::analysis::{tie, Plan};
use timescale_core::architecture::ArchitectureSpec;
use timescale_core::loss::{LossInput, BESIROGLU, DEFAULT_LAW};
use timescale_core::search::{search, Guards, SearchParams, SearchSpace};
use timescale_core::{predict, Budget, Chips, Datasheet, Hardware, Law, PredictOptions, Roofline};

/// An H100-like chip from datasheet figures (989 TFLOP/s bf16, 3.35 TB/s, 80 GiB).
fn chip() -> Hardware {
    let sheet = Datasheet {
        peak_bf16_flops_per_s: 9.894e14,
        hbm_bytes_per_s: 3.35e12,
        roofline: Roofline::Sum,
        flops_efficiency: 0.78,
        attention_efficiency: Some(0.27),
        bandwidth_efficiency: 0.56,
        overhead_s: 0.039,
    };
    Hardware::from_datasheet(85_899_345_920.0, 0.9, sheet, None, Some(3.0)).unwrap()
}

#[test]
fn a_prediction_adds_its_loss_terms_and_counts_whole_steps() {
    let arch =
        ArchitectureSpec { seq_len: Some(2048), batch_size: Some(64), ..ArchitectureSpec::new(1024, 16, 16) }.build().unwrap();
    let law = Law::by_name(DEFAULT_LAW).unwrap();
    let opts = PredictOptions { law, fit: timescale_core::loss::CHINCHILLA_FIT_RANGE, unique_tokens: None, layout: None };
    let p = predict(&arch, &chip(), &Budget::hours(12.0), &Chips::One, &opts).unwrap();
    // Whole steps: floor(43,200 s / step time); tokens = steps x 64 x 2048.
    assert_eq!(p.metrics.steps, (43_200.0 / p.metrics.step_time_s).floor());
    assert_eq!(p.metrics.tokens, p.metrics.steps * 131_072.0);
    let t = p.loss_terms();
    assert!(((t.irreducible + t.params) + (t.shape + t.vocab) + t.context + t.data - p.metrics.loss).abs() < 1e-12);
    // Trained at the evaluation context (2048) and the reference vocabulary: those terms are 0.
    assert_eq!((t.context, t.vocab), (0.0, 0.0));
    assert_eq!(t.irreducible, 1.8172); // Besiroglu et al. 2024's E
}

#[test]
fn a_search_answers_with_the_lowest_loss_of_its_space_and_ties_with_itself() {
    let space = SearchSpace {
        d_model: vec![512, 1024, 2048],
        n_layers: vec![4, 8, 16],
        seq_len: vec![2048],
        batch_size: vec![16, 64],
        ..SearchSpace::default()
    };
    let params = SearchParams {
        hardware: chip(),
        budget_s: 3_600.0,
        law: BESIROGLU,
        guards: Guards::for_law(&BESIROGLU),
        top_k: 5,
        unique_tokens: None,
        chips: 1,
    };
    let out = search(&space, &params).unwrap();
    assert_eq!(out.best, out.top[0]);
    assert!(out.top.windows(2).all(|w| w[0].loss <= w[1].loss));
    // The best is what predicting its configuration gives.
    let arch = space.config_at(out.best.index).unwrap();
    let m = params.evaluate(&arch);
    assert_eq!(m.loss, out.best.loss);
    assert_eq!(BESIROGLU.loss_of(&LossInput::of(&arch, m.tokens, None)), m.loss);
    let plan = Plan { arch, tokens: m.tokens, rel_step_error: 0.05 };
    assert!(tie(&BESIROGLU, None, &plan, &plan).is_some());
}

#[test]
fn the_plain_law_is_chinchillas_formula() {
    // Hoffmann et al. 2022 at Chinchilla (70e9 parameters, 1.4e12 tokens): 1.9367 by hand.
    let l = Law::by_name("hoffmann").unwrap().plain();
    assert!((l.loss(70e9, 1.4e12) - 1.9367).abs() < 5e-4);
    assert!(l.term_names().is_empty());
}
