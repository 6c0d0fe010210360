//! What the reports compute beyond one search: the width-depth picture (`timescale report
//! width-depth`) runs one search per (d_model, n_layers) cell, so its grid is bounded here, before
//! any search runs (each cell's search is bounded as every search is, by the space's size).

use crate::error::{count, Error, Result};

/// Most cells a width-depth picture has (a 50 x 50 grid): each is a search, and a picture of more
/// cells than a screen has pixels shows nothing more.
pub const MAX_GRID_CELLS: u64 = 2_500;

/// Checks a width-depth grid of `widths` x `depths` cells (counts as given) against
/// [`MAX_GRID_CELLS`]; returns the number of cells.
pub fn check_grid(widths: u64, depths: u64) -> Result<u64> {
    let cells = widths.saturating_mul(depths);
    if cells == 0 || cells > MAX_GRID_CELLS {
        return Err(Error::invalid(
            "grid",
            format!("{} widths x {} depths", count(widths), count(depths)),
            &format!("at most {} cells (each cell is a search), at least 1", count(MAX_GRID_CELLS)),
        ));
    }
    Ok(cells)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grids_are_bounded() {
        assert_eq!(check_grid(6, 24), Ok(144));
        assert_eq!(check_grid(50, 50), Ok(2500));
        assert_eq!(
            check_grid(1_000_000, 1000).unwrap_err().to_string(),
            "grid = 1,000,000 widths x 1,000 depths is invalid: expected at most 2,500 cells (each cell is a search), at least 1"
        );
        assert!(check_grid(u64::MAX, u64::MAX).is_err());
    }
}
