//! An allocator of transparent huge pages for the replay loader's tables.

use std::alloc::Layout;
use std::ptr::NonNull;

/// Allocates large blocks on transparent huge pages.
///
/// The loader's table is probed at random over hundreds of megabytes; with
/// 4 KiB pages nearly every probe also misses the TLB, so its blocks ask for
/// huge pages (where the system grants them on request, as Linux does by
/// default). Small blocks go to the global allocator as usual. The table
/// lives only while the log is replayed.
#[derive(Debug, Clone, Copy)]
pub(super) struct HugePages;

/// The size and alignment of a huge page on x86-64 and aarch64 Linux.
const HUGE_PAGE: usize = 2 << 20;

impl HugePages {
    /// The layout actually used for `layout`: whole, aligned huge pages.
    fn huge(layout: Layout) -> Option<Layout> {
        if layout.size() < HUGE_PAGE {
            return None;
        }
        let size = layout.size().checked_next_multiple_of(HUGE_PAGE)?;
        Layout::from_size_align(size, HUGE_PAGE.max(layout.align())).ok()
    }
}

// SAFETY: every block comes from the global allocator, and is returned to it
// with the layout it was allocated with (`huge` is a pure function of the
// caller's layout).
unsafe impl allocator_api2::alloc::Allocator for HugePages {
    fn allocate(&self, layout: Layout) -> Result<NonNull<[u8]>, allocator_api2::alloc::AllocError> {
        let Some(huge) = Self::huge(layout) else {
            return allocator_api2::alloc::Global.allocate(layout);
        };
        // SAFETY: the layout's size is at least HUGE_PAGE, not zero.
        let block = NonNull::new(unsafe { std::alloc::alloc(huge) })
            .ok_or(allocator_api2::alloc::AllocError)?;
        #[cfg(target_os = "linux")]
        // SAFETY: the range is the block just allocated, aligned to a page;
        // the advice only changes how it is backed, never its contents.
        unsafe {
            libc::madvise(block.as_ptr().cast(), huge.size(), libc::MADV_HUGEPAGE);
        }
        Ok(NonNull::slice_from_raw_parts(block, layout.size()))
    }

    unsafe fn deallocate(&self, block: NonNull<u8>, layout: Layout) {
        match Self::huge(layout) {
            // SAFETY: allocated above with this same layout.
            Some(huge) => unsafe { std::alloc::dealloc(block.as_ptr(), huge) },
            // SAFETY: the caller's contract, passed on to the global allocator.
            None => unsafe { allocator_api2::alloc::Global.deallocate(block, layout) },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn huge_page_layouts_round_up_and_small_ones_are_left_alone() {
        use allocator_api2::alloc::Allocator;
        let small = Layout::from_size_align(1000, 8).unwrap();
        assert_eq!(HugePages::huge(small), None);
        let big = Layout::from_size_align(HUGE_PAGE + 1, 16).unwrap();
        let huge = HugePages::huge(big).unwrap();
        assert_eq!((huge.size(), huge.align()), (2 * HUGE_PAGE, HUGE_PAGE));
        for layout in [small, big] {
            let block = HugePages.allocate(layout).unwrap();
            assert!(block.len() >= layout.size());
            let start = block.cast::<u8>();
            // SAFETY: the block is at least layout.size() bytes, and is
            // returned with the layout it was allocated with.
            unsafe {
                start.as_ptr().write_bytes(0xA5, layout.size());
                assert_eq!(*start.as_ptr().add(layout.size() - 1), 0xA5);
                HugePages.deallocate(start, layout);
            }
        }
    }
}
