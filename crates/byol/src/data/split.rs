//! `torch.utils.data.random_split`'s job: disjoint random subsets of given
//! lengths, the same for the same seed.
use crate::error::{Error, Result};

/// mulberry32, a small seeded generator (floats in [0, 1)); the one the
/// package used in JavaScript first, kept so that seeded splits stay as they were.
struct Mulberry32(u32);

impl Mulberry32 {
    fn next(&mut self) -> f64 {
        self.0 = self.0.wrapping_add(0x6d2b_79f5);
        let mut t = self.0;
        t = (t ^ (t >> 15)).wrapping_mul(t | 1);
        t ^= t.wrapping_add((t ^ (t >> 7)).wrapping_mul(t | 61));
        (t ^ (t >> 14)) as f64 / 4_294_967_296.0
    }
}

/// The indices of `total` items split into subsets of `lengths` (which must
/// add up to `total`) after a Fisher-Yates shuffle seeded with `seed` (0 if none).
pub fn random_split(total: usize, lengths: &[usize], seed: Option<u64>) -> Result<Vec<Vec<usize>>> {
    let seed = seed.unwrap_or(0);
    let sum: usize = lengths.iter().sum();
    if sum != total {
        return Err(Error::range("lengths", format!("lengths that add up to the dataset's {total} items"), sum));
    }
    let mut random = Mulberry32(seed as u32);
    let mut order: Vec<usize> = (0..total).collect();
    for i in (1..total).rev() {
        let j = (random.next() * (i + 1) as f64).floor() as usize;
        order.swap(i, j);
    }
    let mut start = 0;
    Ok(lengths
        .iter()
        .map(|&n| {
            let part = order[start..start + n].to_vec();
            start += n;
            part
        })
        .collect())
}

/// `random_split`'s `lengths` as counts: whole numbers that add up to
/// `total`, or fractions that add up to 1, as torch accepts them (each
/// fraction's floor of `total`, then one more item to the first subsets, round
/// robin, until all are placed).
pub fn split_lengths(total: usize, lengths: &[f64]) -> Result<Vec<usize>> {
    if let Some((i, bad)) = lengths.iter().enumerate().find(|(_, l)| !(l.is_finite() && **l >= 0.0)) {
        return Err(Error::range(format!("lengths[{i}]"), "a count or a fraction >= 0", bad));
    }
    let sum: f64 = lengths.iter().sum();
    // torch's test: math.isclose(sum(lengths), 1) and sum(lengths) <= 1.
    let fractions = (sum - 1.0).abs() <= 1e-9 && sum <= 1.0;
    if !fractions {
        if let Some((i, bad)) = lengths.iter().enumerate().find(|(_, l)| l.fract() != 0.0) {
            return Err(Error::range(format!("lengths[{i}]"), "whole counts, or fractions that add up to 1", bad));
        }
        return Ok(lengths.iter().map(|l| *l as usize).collect());
    }
    let mut counts: Vec<usize> = lengths.iter().map(|f| (f * total as f64).floor() as usize).collect();
    let placed: usize = counts.iter().sum();
    for i in 0..total.saturating_sub(placed) {
        let n = counts.len();
        counts[i % n] += 1;
    }
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fractions_become_counts_as_torch_makes_them() {
        // torch.utils.data.random_split(range(10), [0.25, 0.25, 0.5]) gives 3, 2
        // and 5 items; [0.34, 0.33, 0.33] gives 4, 3, 3.
        assert_eq!(split_lengths(10, &[0.25, 0.25, 0.5]).ok(), Some(vec![3, 2, 5]));
        assert_eq!(split_lengths(10, &[0.34, 0.33, 0.33]).ok(), Some(vec![4, 3, 3]));
        assert_eq!(split_lengths(100, &[0.8, 0.2]).ok(), Some(vec![80, 20]));
        assert_eq!(split_lengths(10, &[7.0, 3.0]).ok(), Some(vec![7, 3]));
    }

    #[test]
    fn a_fraction_in_lengths_that_do_not_add_up_to_1_is_an_error_naming_it() {
        let e = split_lengths(10, &[0.5, 0.3]).err();
        assert_eq!(e.as_ref().and_then(|e| e.argument()), Some("lengths[0]"));
    }

    #[test]
    fn the_subsets_are_disjoint_and_cover_the_dataset() {
        let parts = random_split(10, &[7, 3], Some(1)).unwrap();
        let mut all: Vec<usize> = parts.concat();
        all.sort();
        assert_eq!(all, (0..10).collect::<Vec<_>>());
        assert_eq!((parts[0].len(), parts[1].len()), (7, 3));
    }

    #[test]
    fn the_same_seed_gives_the_same_split() {
        assert_eq!(random_split(100, &[50, 50], Some(7)).unwrap(), random_split(100, &[50, 50], Some(7)).unwrap());
        assert_ne!(random_split(100, &[50, 50], Some(7)).unwrap(), random_split(100, &[50, 50], Some(8)).unwrap());
    }

    #[test]
    fn lengths_must_add_up() {
        assert!(random_split(10, &[5, 4], None).is_err());
    }

    #[test]
    fn mulberry32_matches_its_javascript_original() {
        // The first draws of mulberry32(0) as JavaScript computes them.
        let mut r = Mulberry32(0);
        let first: Vec<f64> = (0..3).map(|_| r.next()).collect();
        assert_eq!(first, vec![0.26642920868471265, 0.0003297457005828619, 0.2232720274478197]);
    }
}
