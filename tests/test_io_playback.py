"""PlaybackTracker: which response's audio the device has actually played."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bidi_core.events import BidiAudioStreamEvent
from bidi_core.io import PlaybackTracker


def chunk(
    ms: float, response_id: str | None, rate: int = 16000, channels: int = 1
) -> BidiAudioStreamEvent:
    """Return *ms* of (silent) PCM16 audio of *response_id*."""
    nbytes = 2 * channels * int(rate * ms / 1000)
    return BidiAudioStreamEvent(
        audio=bytes(nbytes), sample_rate=rate, channels=channels, response_id=response_id
    )


def nbytes(ms: float, rate: int = 16000, channels: int = 1) -> int:
    """Bytes in *ms* of PCM16 audio."""
    return 2 * channels * int(rate * ms / 1000)


def test_played_bytes_are_attributed_to_their_response() -> None:
    """Bytes consumed from the head count as played for the response they came from."""
    tracker = PlaybackTracker()
    tracker.received(chunk(100, "r1"))
    assert tracker.played(nbytes(40)) == pytest.approx(40)
    assert tracker.played_ms("r1") == pytest.approx(40)
    assert tracker.received_ms("r1") == pytest.approx(100)
    assert tracker.queued_ms == pytest.approx(60)
    assert tracker.queued_bytes == nbytes(60)


def test_playback_crosses_response_boundaries_in_order() -> None:
    """One play call spanning two responses splits the bytes between them in FIFO order."""
    tracker = PlaybackTracker()
    tracker.received(chunk(30, "r1"))
    tracker.received(chunk(50, "r2"))
    tracker.received(chunk(20, "r1"))  # a late chunk of r1 queues behind r2
    tracker.played(nbytes(60))
    assert tracker.played_ms("r1") == pytest.approx(30)
    assert tracker.played_ms("r2") == pytest.approx(30)
    tracker.played(nbytes(30))
    assert tracker.played_ms("r2") == pytest.approx(50)
    assert tracker.played_ms("r1") == pytest.approx(40)
    assert tracker.received_ms("r1") == pytest.approx(50)


def test_bytes_are_converted_at_each_chunks_own_rate() -> None:
    """Chunks at 16 kHz mono, 24 kHz mono and 48 kHz stereo each count at their own rate."""
    tracker = PlaybackTracker()
    tracker.received(chunk(20, "a", rate=16000))
    tracker.received(chunk(20, "b", rate=24000))
    tracker.received(chunk(20, "c", rate=48000, channels=2))
    tracker.played(nbytes(20, 16000) + nbytes(20, 24000) + nbytes(10, 48000, 2))
    assert tracker.played_ms("a") == pytest.approx(20)
    assert tracker.played_ms("b") == pytest.approx(20)
    assert tracker.played_ms("c") == pytest.approx(10)
    assert tracker.queued_ms == pytest.approx(10)


def test_clear_drops_unplayed_audio_and_reports_its_duration() -> None:
    """clear() drops everything unplayed, returns its ms, and keeps what was played."""
    tracker = PlaybackTracker()
    tracker.received(chunk(100, "r1"))
    tracker.received(chunk(100, "r2", rate=24000))
    tracker.played(nbytes(70))
    assert tracker.clear() == pytest.approx(130)
    assert tracker.queued_bytes == 0
    assert tracker.played_ms("r1") == pytest.approx(70)
    assert tracker.played_ms("r2") == 0.0
    assert tracker.played(nbytes(10)) == 0.0  # nothing queued: the device played silence
    tracker.received(chunk(10, "r3"))
    tracker.played(nbytes(10))
    assert tracker.played_ms("r3") == pytest.approx(10)


def test_playing_more_than_queued_counts_only_queued_audio() -> None:
    """Bytes beyond the queue (an underrun filled with silence) are not attributed."""
    tracker = PlaybackTracker()
    tracker.received(chunk(20, "r1"))
    assert tracker.played(nbytes(50)) == pytest.approx(20)
    assert tracker.played_ms("r1") == pytest.approx(20)


def test_discard_drops_from_the_head_without_counting_it_played() -> None:
    """discard() removes the oldest audio (buffer overflow) without counting it as heard."""
    tracker = PlaybackTracker()
    tracker.received(chunk(30, "r1"))
    tracker.received(chunk(30, "r2"))
    assert tracker.discard(nbytes(40)) == pytest.approx(40)
    tracker.played(nbytes(20))
    assert tracker.played_ms("r1") == 0.0
    assert tracker.played_ms("r2") == pytest.approx(20)


def test_unknown_and_none_response_ids() -> None:
    """An unknown id reports 0.0; audio without a response id is tracked under None."""
    tracker = PlaybackTracker()
    assert tracker.played_ms("nope") == 0.0
    assert tracker.received_ms("nope") == 0.0
    tracker.received(chunk(10, None))
    tracker.played(nbytes(10))
    assert tracker.played_ms(None) == pytest.approx(10)


def test_forget_drops_a_responses_totals() -> None:
    """forget() drops a finished response's totals so long sessions stay small."""
    tracker = PlaybackTracker()
    tracker.received(chunk(10, "r1"))
    tracker.played(nbytes(10))
    tracker.forget("r1")
    assert tracker.played_ms("r1") == 0.0
    assert tracker.received_ms("r1") == 0.0


def chunk_with_format(*, rate: int) -> BidiAudioStreamEvent:
    """A chunk whose sample rate was changed after its checks ran (as a stub could)."""
    event = BidiAudioStreamEvent(audio=b"\0\0", sample_rate=16000, response_id="r")
    object.__setattr__(event, "sample_rate", rate)
    return event


def test_empty_chunks_are_ignored_and_bad_input_is_refused() -> None:
    """Empty chunks change nothing; negative byte counts and bad formats raise ValueError."""
    tracker = PlaybackTracker()
    tracker.received(BidiAudioStreamEvent(audio=b"", sample_rate=16000, response_id="r"))
    assert tracker.queued_bytes == 0
    assert tracker.received_ms("r") == 0.0
    with pytest.raises(ValueError, match="negative"):
        tracker.played(-1)
    with pytest.raises(ValueError, match="positive"):
        tracker.received(chunk_with_format(rate=0))


def test_repr_summarizes_the_queue() -> None:
    """repr shows the queued duration and the number of responses."""
    tracker = PlaybackTracker()
    tracker.received(chunk(100, "r1"))
    assert "queued=100 ms" in repr(tracker)


@given(
    chunks=st.lists(
        st.tuples(
            st.sampled_from(["a", "b", "c"]), st.integers(1, 400), st.sampled_from([16000, 24000])
        ),
        max_size=20,
    ),
    plays=st.lists(st.integers(0, 5000), max_size=20),
)
def test_played_plus_queued_equals_received(
    chunks: list[tuple[str, int, int]], plays: list[int]
) -> None:
    """Whatever the play sizes, played + still-queued audio equals what was received."""
    tracker = PlaybackTracker()
    for response_id, samples, rate in chunks:
        tracker.received(
            BidiAudioStreamEvent(
                audio=bytes(2 * samples), sample_rate=rate, response_id=response_id
            )
        )
    total = sum(2 * samples for _, samples, _ in chunks)
    played = 0
    for n in plays:
        tracker.played(2 * n)
        played = min(total, played + 2 * n)
    assert tracker.queued_bytes == total - played
    received = sum(tracker.received_ms(r) for r in "abc")
    heard = sum(tracker.played_ms(r) for r in "abc")
    assert heard + tracker.queued_ms == pytest.approx(received)
