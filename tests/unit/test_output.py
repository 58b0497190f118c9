from actors.output import STDERR, STDOUT, OutputCapture


def capture(max_log_bytes=1000, max_result_bytes=100, tail_bytes=20):
    stored = []
    return OutputCapture(stored.append, max_log_bytes=max_log_bytes, max_result_bytes=max_result_bytes, tail_bytes=tail_bytes), stored


def test_last_result_line_on_stdout_wins():
    c, _ = capture()
    c.feed(STDOUT, b'DOCKYARD_RESULT {"a": 1}\nlog\nDOCKYARD_RESU')
    c.feed(STDOUT, b'LT {"b": 2}\n')
    c.finish()
    assert c.result() == ({"b": 2}, None)


def test_result_line_on_stderr_is_ignored():
    c, _ = capture()
    c.feed(STDERR, b'DOCKYARD_RESULT {"a": 1}\n')
    c.finish()
    assert c.result() == (None, None)


def test_unterminated_last_line_counts():
    c, _ = capture()
    c.feed(STDOUT, b"DOCKYARD_RESULT [1, 2]")
    c.finish()
    assert c.result() == ([1, 2], None)


def test_bad_or_oversized_result_is_explained():
    c, _ = capture()
    c.feed(STDOUT, b"DOCKYARD_RESULT {nope\n")
    c.finish()
    value, problem = c.result()
    assert value is None and "not JSON" in problem
    c, _ = capture(max_result_bytes=5)
    c.feed(STDOUT, b'DOCKYARD_RESULT "long string"\n')
    c.finish()
    value, problem = c.result()
    assert value is None and "larger than 5 bytes" in problem


def test_logs_are_capped_with_one_notice_and_tail_keeps_going():
    c, stored = capture(max_log_bytes=10, tail_bytes=5)
    c.feed(STDOUT, b"0123456789abcdef")
    c.feed(STDERR, b"more output")
    c.finish()
    c.flush()
    text = "".join(stored)
    assert text.startswith("0123456789\n[dockyard] log truncated at 10 bytes")
    assert "more" not in text
    assert c.tail == "utput"
    assert c.truncated


def test_utf8_split_across_frames_is_decoded():
    c, stored = capture()
    data = "héllo\n".encode()
    c.feed(STDOUT, data[:2])
    c.feed(STDOUT, data[2:])
    c.finish()
    c.flush()
    assert "".join(stored) == "héllo\n"


def test_flush_only_sends_new_text():
    c, stored = capture()
    c.feed(STDOUT, b"a")
    c.flush()
    c.flush()
    c.feed(STDOUT, b"b")
    c.flush()
    assert stored == ["a", "b"]


def test_a_failing_sink_keeps_the_text_for_the_next_flush():
    stored, failing = [], [True]

    def sink(text):
        if failing[0]:
            raise ConnectionError("database away")
        stored.append(text)

    cap = OutputCapture(sink, max_log_bytes=1000, max_result_bytes=100, tail_bytes=100)
    cap.feed(STDOUT, b"one\n")
    assert cap.flush() is False  # logged, not raised: the run goes on
    cap.feed(STDOUT, b"two\n")
    try:
        cap.flush(strict=True)
        raise AssertionError("strict flush should raise")
    except ConnectionError:
        pass
    failing[0] = False
    assert cap.flush() is True
    assert "".join(stored) == "one\ntwo\n"


def test_nul_bytes_are_stored_as_the_replacement_character():
    """Found with the hog sample, which prints the zeros it allocated: Postgres refused the log, and the attempt's end."""
    c, stored = capture()
    c.feed(STDOUT, b"a\x00\x00b\n")
    c.finish()
    c.flush()
    assert "".join(stored) == "a\ufffd\ufffdb\n" and "\x00" not in c.tail


def test_finish_leaves_the_rest_for_the_caller_to_store_in_its_own_transaction():
    c, stored = capture()
    c.feed(STDOUT, b"early\n")
    c.flush()
    c.feed(STDOUT, "late \u00e9".encode()[:-1])  # the last character cut in half: decoded by finish
    c.finish()
    c.note("ended")
    assert stored == ["early\n"]
    text = c.take_pending()
    assert text == "late \ufffd[dockyard] ended\n"
    assert c.take_pending() == ""
    c.put_back(text)  # that transaction failed: the text goes first in the next flush
    c.feed(STDOUT, b"after\n")
    c.flush()
    assert stored == ["early\n", text + "after\n"]
