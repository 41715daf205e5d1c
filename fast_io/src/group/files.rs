//! File rounds ([`SocketGroup::send_file_round`], C16 in a group): the checks every backend
//! makes before a round, the error of a file that ends before its range, and the copying
//! default, one `send_round` of what `pread` found.

use std::io;
use std::os::unix::fs::FileExt;

use super::{FileRange, FlushReport, Member, SocketGroup, refuse_twice};
use crate::Error;
use crate::files::{COPY_CHUNK, check_positioned, range_end};

/// Refuses a file round whose range goes past the largest file offset (`InvalidInput`), before
/// anything is sent.
pub fn check_ranges(sends: &[(Member, FileRange<'_>)]) -> Result<(), Error> {
    for (_, range) in sends {
        range_end(range.offset, range.len).map_err(Error::Os)?;
    }
    Ok(())
}

/// Refuses a receive round into files before anything is received: a range past the largest
/// file offset, or a file opened `O_APPEND`, which cannot be written at an offset
/// (`InvalidInput`).
pub fn check_receiving(recvs: &[(Member, FileRange<'_>)]) -> Result<(), Error> {
    check_ranges(recvs)?;
    for (_, range) in recvs {
        check_positioned(range.file).map_err(Error::Os)?;
    }
    Ok(())
}

/// The refusal of a receive round into files that names a member routed to another
/// ([`SocketGroup::forward`](super::SocketGroup::forward)): its bytes go there (`InvalidInput`).
pub fn routed(member: Member) -> Error {
    Error::Os(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!("{member} is routed to another member: its bytes go there"),
    ))
}

/// The error of a member whose file ended at `at`, before its range did (`UnexpectedEof`): the
/// bytes the file had were sent, and the socket is fine.
pub fn file_ended(range: &FileRange<'_>, at: u64) -> Error {
    Error::Os(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!(
            "the file ends at {at}, before its range {}..{} does",
            range.offset,
            range.offset.saturating_add(range.len)
        ),
    ))
}

/// The default [`SocketGroup::send_file_round`]: reads at most [`COPY_CHUNK`] bytes of each
/// range into a buffer of its own and makes one [`SocketGroup::send_round`] of them, so rounds,
/// waits and failures are exactly `send_round`'s. A file that ends or fails is listed in the
/// report's `failed` (its member's buffered bytes still go), and reading a range costs one
/// `pread` per member and round whether the member's socket takes its bytes or not.
pub fn send_file_round_by_copy<G: SocketGroup + ?Sized>(
    group: &mut G,
    sends: &[(Member, FileRange<'_>)],
    taken: &mut Vec<u64>,
) -> Result<FlushReport, Error> {
    refuse_twice(sends.iter().map(|&(member, _)| member))?;
    check_ranges(sends)?;
    let mut files_failed = Vec::new();
    let mut pieces: Vec<Vec<u8>> = Vec::with_capacity(sends.len());
    for &(member, range) in sends {
        let want = range.len.min(COPY_CHUNK as u64) as usize;
        let mut piece = vec![0; want];
        let got = loop {
            match range.file.read_at(&mut piece, range.offset) {
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                other => break other,
            }
        };
        match got {
            Ok(n) => piece.truncate(n),
            Err(err) => {
                files_failed.push((member, Error::Os(err)));
                piece.clear();
            }
        }
        if piece.is_empty() && want > 0 && files_failed.last().is_none_or(|f| f.0 != member) {
            files_failed.push((member, file_ended(&range, range.offset)));
        }
        pieces.push(piece);
    }
    let lent: Vec<(Member, &[u8])> = sends
        .iter()
        .zip(&pieces)
        .map(|(&(member, _), piece)| (member, &piece[..]))
        .collect();
    let mut got = Vec::with_capacity(sends.len());
    let mut report = group.send_round(&lent, &mut got)?;
    taken.clear();
    taken.extend(got.into_iter().map(|n| n as u64));
    report.failed.extend(files_failed);
    Ok(report)
}
