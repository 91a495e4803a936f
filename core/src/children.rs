//! Closed children waiting to travel nested in their parent's document.
//!
//! A child is written once, in embedded form, into its parent's buffer; the
//! parent's close copies the buffer into its own document as `subsegments`,
//! or, if that would not fit a datagram, the children go out on their own.
//! Buffers are few and preallocated: a parent that finds none free, or a
//! full one, lets its next children go on their own.

use arrayvec::ArrayVec;

use crate::document::ENTITY_MAX;

/// Closed children kept per buffer before the next ones go on their own.
const MAX_CHILDREN: usize = 256;
/// Bytes of closed children one parent nests: half a document, leaving room
/// for the parent's own fields and the array's punctuation.
const CHILDREN_MAX: usize = ENTITY_MAX / 2;
const SUBSEGMENTS: &[u8] = b",\"subsegments\":[";

/// Which buffer a parent holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct BufferId(u32);

#[derive(Debug)]
struct Buffer {
    bytes: Vec<u8>,
    /// End offset and span count of each child.
    ends: ArrayVec<(u32, u64), MAX_CHILDREN>,
}

/// The preallocated buffers and which are free.
#[derive(Debug)]
pub(crate) struct ChildBuffers {
    buffers: Vec<Buffer>,
    free: Vec<u32>,
}

impl ChildBuffers {
    pub(crate) fn new(count: usize) -> Self {
        ChildBuffers {
            buffers: (0..count)
                .map(|_| Buffer {
                    bytes: Vec::with_capacity(CHILDREN_MAX),
                    ends: ArrayVec::new(),
                })
                .collect(),
            free: (0..count as u32).rev().collect(),
        }
    }

    /// Empties every buffer; returns the spans they held.
    pub(crate) fn clear(&mut self) -> u64 {
        let held = (self.buffers.iter())
            .flat_map(|c| c.ends.iter().map(|&(_, n)| n))
            .sum();
        for c in &mut self.buffers {
            c.bytes.clear();
            c.ends.clear();
        }
        self.free.clear();
        self.free.extend((0..self.buffers.len() as u32).rev());
        held
    }

    /// Keeps `entity` (carrying `spans` spans) in `holder`'s buffer, taking a
    /// free one if it has none; `false` if there is none or it is full.
    pub(crate) fn keep(
        &mut self,
        holder: &mut Option<BufferId>,
        entity: &[u8],
        spans: u64,
    ) -> bool {
        let id = match *holder {
            Some(id) => id,
            None => match self.free.pop() {
                Some(i) => *holder.insert(BufferId(i)),
                None => return false,
            },
        };
        let kids = &mut self.buffers[id.0 as usize];
        if kids.ends.is_full() || kids.bytes.len() + entity.len() + 1 > CHILDREN_MAX {
            return false;
        }
        kids.bytes.extend_from_slice(entity);
        kids.ends.push((kids.bytes.len() as u32, spans));
        true
    }

    /// Appends `,"subsegments":[…]` with every child of `id` to `out[..len]`
    /// if it fits below `limit`; returns the new length and the spans it
    /// added. The buffer is freed either way; `None`: it did not fit, the
    /// children are still to be sent (see [`ChildBuffers::each`]).
    pub(crate) fn nest(
        &mut self,
        id: BufferId,
        out: &mut [u8],
        len: usize,
        limit: usize,
    ) -> Option<(usize, u64)> {
        let kids = &self.buffers[id.0 as usize];
        let needed = SUBSEGMENTS.len() + kids.bytes.len() + kids.ends.len() + 1;
        if len + needed >= limit {
            return None;
        }
        let mut at = len;
        let mut put = |bytes: &[u8]| {
            out[at..at + bytes.len()].copy_from_slice(bytes);
            at += bytes.len();
        };
        put(SUBSEGMENTS);
        let (mut start, mut spans) = (0usize, 0u64);
        for (i, &(end, n)) in kids.ends.iter().enumerate() {
            if i > 0 {
                put(b",");
            }
            put(&kids.bytes[start..end as usize]);
            start = end as usize;
            spans += n;
        }
        put(b"]");
        self.release(id);
        Some((at, spans))
    }

    /// Calls `f` with each child of `id` and the spans it carries, then frees the buffer.
    pub(crate) fn each(&mut self, id: BufferId, mut f: impl FnMut(&[u8], u64)) {
        let kids = &self.buffers[id.0 as usize];
        let mut start = 0usize;
        for &(end, n) in &kids.ends {
            f(&kids.bytes[start..end as usize], n);
            start = end as usize;
        }
        self.release(id);
    }

    /// Empties and frees buffer `id`.
    pub(crate) fn release(&mut self, id: BufferId) {
        let kids = &mut self.buffers[id.0 as usize];
        kids.bytes.clear();
        kids.ends.clear();
        self.free.push(id.0);
    }
}
