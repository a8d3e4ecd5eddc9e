//! The allocator's tuning, in a process of its own: it sets glibc's
//! parameters for every thread, and the page faults it counts are a thread's.
#![cfg(all(target_os = "linux", target_env = "gnu"))]
use byol::tensor::device::{tune_allocator, HeapsKept};

/// Minor page faults of the calling thread so far.
fn page_faults() -> i64 {
    let mut usage = std::mem::MaybeUninit::<libc::rusage>::zeroed();
    // SAFETY: getrusage fills the struct it is given.
    unsafe {
        libc::getrusage(libc::RUSAGE_THREAD, usage.as_mut_ptr());
        usage.assume_init().ru_minflt
    }
}

/// What each pass allocates. An arena's first heap is never unmapped (the
/// tuned trim threshold is larger than a heap), so a pass over a used arena
/// maps up to 64 MiB less than this.
const WORKING_SET_MIB: i64 = 160;

/// Allocates the working set in blocks of `size` bytes, writes every page,
/// frees it all, and returns the MiB that took page faults to map.
fn fault_in_and_free(size: usize) -> i64 {
    let before = page_faults();
    let held: Vec<Vec<u8>> = (0..(WORKING_SET_MIB << 20) as usize / size)
        .map(|_| {
            let mut b = vec![0u8; 0];
            b.reserve_exact(size);
            // Written page by page through the spare capacity, as a kernel
            // writes its output.
            b.spare_capacity_mut().iter_mut().step_by(4096).for_each(|x| {
                x.write(1);
            });
            b
        })
        .collect();
    drop(std::hint::black_box(held));
    (page_faults() - before) * 4096 / (1 << 20)
}

/// 1 MiB blocks are gradients; 16 MiB blocks, a stem's activations.
const SIZES: [usize; 2] = [1 << 20, 16 << 20];

/// Each size on a thread of its own, as `Trainer.fit` steps on one: threads
/// other than the first allocate from heaps of their own, which glibc unmaps
/// as soon as they are wholly free.
fn on_a_thread(sizes: &[usize], f: fn(usize)) {
    // One test at a time: the guard's setting is the process's.
    static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner());
    for &size in sizes {
        std::thread::spawn(move || f(size)).join().unwrap();
    }
}

#[test]
fn a_thread_that_keeps_its_heaps_gets_the_memory_it_freed_back_without_page_faults() {
    assert!(tune_allocator());
    on_a_thread(&SIZES, |size| {
        let _kept = HeapsKept::new();
        fault_in_and_free(size);
        let again = fault_in_and_free(size);
        assert!(again < 8, "blocks of {size} bytes: {again} MiB mapped again in the second pass");
    });
}

#[test]
fn when_the_last_guard_goes_the_memory_is_handed_back() {
    assert!(tune_allocator());
    on_a_thread(&SIZES, |size| {
        let kept = HeapsKept::new();
        fault_in_and_free(size);
        drop(kept);
        let after = fault_in_and_free(size);
        assert!(after >= WORKING_SET_MIB - 64, "blocks of {size} bytes: {after} MiB mapped again after the release");
    });
}

#[test]
fn without_the_guard_a_thread_maps_its_freed_memory_again() {
    // What the guard is for, with blocks of a gradient's size (larger blocks
    // freed in this order happen to stay mapped); if glibc ever keeps these
    // heaps by itself, the guard has nothing left to do.
    assert!(tune_allocator());
    on_a_thread(&[1 << 20], |size| {
        fault_in_and_free(size);
        let again = fault_in_and_free(size);
        assert!(again >= WORKING_SET_MIB - 64, "blocks of {size} bytes: {again} MiB mapped again in the second pass");
    });
}
