//! Chunks of a reader, as owned buffers.

use std::io::{self, Read};
use std::mem;

use crate::chunker::{Chunker, ChunkerTables};

/// Bytes requested from the reader at a time (restic's `chunkerBufSize`).
pub const READ_SIZE: usize = 512 * 1024;

/// Yields the chunks of a reader as `Vec<u8>`, restic's way; an empty input yields none.
///
/// Data is read straight into one buffer, which becomes the yielded chunk when the chunk
/// starts at its beginning; only the bytes read past the cut move to a new buffer. (With
/// chunks smaller than a read, chunks are copied out instead, so no byte is copied more than
/// about twice.) A buffer never grows past `max_size + READ_SIZE`. After a read error, which
/// is yielded, the iterator ends.
pub struct ChunkIter<R: Read> {
    reader: R,
    chunker: Chunker,
    /// `buf[start..]` is the current chunk so far, of which `buf[..scanned]` has been fed to
    /// the chunker.
    buf: Vec<u8>,
    start: usize,
    scanned: usize,
    eof: bool,
    done: bool,
}

impl<R: Read> ChunkIter<R> {
    /// Chunks `reader` with restic's default parameters.
    pub fn new(reader: R, tables: &ChunkerTables) -> Self {
        Self::with_chunker(reader, Chunker::new(tables))
    }

    /// Chunks `reader` with a configured chunker, starting a new file.
    pub fn with_chunker(reader: R, mut chunker: Chunker) -> Self {
        chunker.reset();
        ChunkIter {
            reader,
            chunker,
            buf: Vec::new(),
            start: 0,
            scanned: 0,
            eof: false,
            done: false,
        }
    }

    /// Removes `buf[start..end]` and returns it as a chunk, copying the smaller side: the
    /// bytes after it into a new buffer, or the chunk out of the buffer.
    fn take_chunk(&mut self, end: usize) -> Vec<u8> {
        let rest = self.buf.len() - end;
        if self.start == 0 && rest <= end {
            let mut next = Vec::new();
            next.reserve_exact(rest.max(self.first_capacity()));
            next.extend_from_slice(&self.buf[end..]);
            self.scanned -= end;
            let mut chunk = mem::replace(&mut self.buf, next);
            chunk.truncate(end);
            chunk
        } else {
            let chunk = self.buf[self.start..end].to_vec();
            self.start = end;
            chunk
        }
    }

    /// Room for the reads of a typical chunk.
    fn first_capacity(&self) -> usize {
        self.chunker.min_size() + READ_SIZE
    }

    /// Appends up to `READ_SIZE` bytes; sets `eof` when the reader has none left.
    fn fill(&mut self) -> io::Result<()> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.scanned -= self.start;
            self.start = 0;
        }
        // The chunk so far is shorter than max_size (else it would have been cut), so this
        // stays below the largest size a chunk buffer can need: a maximal chunk plus the
        // tail of the read that completed it. Doubling keeps reallocations few.
        let need = self.buf.len() + READ_SIZE;
        if self.buf.capacity() < need {
            let target = (self.buf.capacity() * 2)
                .max(self.first_capacity())
                .clamp(need, self.chunker.max_size() + READ_SIZE);
            self.buf.reserve_exact(target - self.buf.len());
        }
        let n = (&mut self.reader)
            .take(READ_SIZE as u64)
            .read_to_end(&mut self.buf)?;
        self.eof = n == 0;
        Ok(())
    }
}

impl<R: Read> Iterator for ChunkIter<R> {
    type Item = io::Result<Vec<u8>>;

    fn next(&mut self) -> Option<Self::Item> {
        while !self.done {
            if let Some(n) = self.chunker.next_boundary(&self.buf[self.scanned..]) {
                self.scanned += n;
                return Some(Ok(self.take_chunk(self.scanned)));
            }
            self.scanned = self.buf.len();
            if self.eof {
                self.done = true;
                let end = self.buf.len();
                return (end > self.start).then(|| Ok(self.take_chunk(end)));
            }
            if let Err(e) = self.fill() {
                self.done = true;
                return Some(Err(e));
            }
        }
        None
    }
}
