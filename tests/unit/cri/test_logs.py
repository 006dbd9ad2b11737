import re

from cri import logs

RFC3339NANO = re.compile(rb"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{9}Z$")


def test_record_has_rfc3339nano_timestamp_stream_and_full_tag():
    line = logs.format_line("stdout", b"hello world", partial=False, ns=1_700_000_000_123_456_789)
    assert line == b"2023-11-14T22:13:20.123456789Z stdout F hello world\n"
    ts, stream, partial, content = logs.parse_line(line)
    assert (stream, partial, content) == ("stdout", False, b"hello world")
    assert RFC3339NANO.match(ts.encode())


def test_splitter_emits_complete_lines_and_keeps_the_rest():
    s = logs.LineSplitter("stderr")
    out = s.feed(b"one\ntw")
    assert [logs.parse_line(r)[1:] for r in out] == [("stderr", False, b"one")]
    out = s.feed(b"o\nthree")
    assert [logs.parse_line(r)[3] for r in out] == [b"two"]
    assert [logs.parse_line(r)[2:] for r in s.flush()] == [(False, b"three")]
    assert s.flush() == []


def test_overlong_line_is_split_into_partial_records_then_a_full_one():
    s = logs.LineSplitter("stdout", max_line=4)
    records = [logs.parse_line(r) for r in s.feed(b"abcdefghij\nxy\n")]
    assert [(r[2], r[3]) for r in records] == [(True, b"abcd"), (True, b"efgh"), (False, b"ij"), (False, b"xy")]


def test_empty_lines_are_kept():
    s = logs.LineSplitter("stdout")
    assert [logs.parse_line(r)[3] for r in s.feed(b"\n\n")] == [b"", b""]
