"""What a spec file may hold, and where its errors point (issues 15 and 16):
bytes that are not UTF-8, a byte-order mark, unusual line ends, numbers
beyond what a float or an int holds, include names no file can have."""

import time

import pytest

from minispec.compiler import compile_file
from minispec.errors import MinispecError
from minispec.lang.printer import format_merged
from minispec.lang.files import read

GOOD = "spec a\ndata disk(train=20, test=20)\nnet { out = x | linear(4) | relu | linear(2) }\nloss { out cross_entropy(target) }\n"


def error_of(path) -> MinispecError:
    with pytest.raises(MinispecError) as caught:
        compile_file(path)
    return caught.value


def test_a_byte_order_mark_is_accepted(tmp_path):
    path = tmp_path / "bom.mdl"
    path.write_bytes(b"\xef\xbb\xbf" + GOOD.encode())
    assert compile_file(path).name == "a"


def test_invalid_utf8_after_a_byte_order_mark_is_located(tmp_path):
    path = tmp_path / "bom.mdl"
    path.write_bytes(b"\xef\xbb\xbfspec a\n# \xe1")
    error = error_of(path)
    assert (error.span.line, error.span.column) == (2, 3)


def test_invalid_utf8_is_located_at_the_bad_byte(tmp_path):
    path = tmp_path / "latin1.mdl"
    path.write_bytes(GOOD.replace("linear(4)", "linear(4) # caf\xe9").encode("latin-1"))
    error = error_of(path)
    assert (error.span.line, error.span.column) == (3, 32)
    lines = error.render().splitlines()
    assert lines[0].startswith(f"{path}:3:32: error: the file is not valid UTF-8: byte 0xe9")
    assert lines[1] == "    net { out = x | linear(4) # caf\ufffd | relu | linear(2) }"
    assert lines[2] == "    " + " " * 31 + "^"


@pytest.mark.parametrize("separator", ["\x0b", "\x0c", "\x85", "\u2028", "\u2029", "\x1c"])
def test_line_separators_other_than_newline_do_not_shift_the_excerpt(separator, write_spec):
    path = write_spec(f"spec a{separator}x\ndata disk()\n", name="bad.mdl")
    error = error_of(path)
    lines = error.render().splitlines()
    if separator != "\x0c":  # a form feed is white space; the others are unexpected characters
        assert (error.span.line, error.span.column) == (1, 7) and lines[1].startswith("    spec a\\")
    path = write_spec(f"spec a # one{separator}line\ndata disk(train=20, test=20)\nnet {{ out = x | linaer(2) }}\n")
    error = error_of(path)
    lines = error.render().splitlines()
    assert error.span.line == 3 and "linaer" in lines[1]
    assert lines[2].index("^") == lines[1].index("linaer")


@pytest.mark.parametrize("newline", ["\r\n", "\r"])
def test_crlf_and_cr_only_files_are_located_on_their_lines(newline, tmp_path):
    path = tmp_path / "a.mdl"
    text = "spec a # a comment\ndata disk(train=20, test=20)\nnet { out = x | linaer(2) }\n"
    path.write_bytes(text.replace("\n", newline).encode())
    error = error_of(path)
    assert error.span.line == 3 and "linaer" in error.render().splitlines()[1]


def test_a_tab_keeps_the_caret_under_the_culprit(write_spec):
    path = write_spec("spec a\ndata disk(train=20, test=20)\nnet {\tout = x |\tlinaer(2) }\n")
    lines = error_of(path).render().splitlines()
    assert lines[2].index("^") == lines[1].index("linaer")


@pytest.mark.parametrize(("value", "what"), [
    ("lr 1e999", "number too large"),
    ("lr 1e-400", "number too small"),
    ("lr -1e999", "number too large"),
    ("schedule step(every=1e-320)", "number too small"),
    ("init uniform(bound=1e999)", "number too large"),
    ("epochs " + "9" * 5000, "integer too large"),
    ("seed 9223372036854775808", "integer too large"),
])
def test_numbers_beyond_a_float_or_an_int_are_located_errors(value, what, write_spec):
    path = write_spec(GOOD + f"train {{ {value} }}\n")
    start = time.perf_counter()
    error = error_of(path)
    assert time.perf_counter() - start < 1
    number = value.split("=")[-1].split(" ")[-1].rstrip(")")
    assert error.message.startswith(what)
    assert (error.span.line, error.span.column) == (5, f"train {{ {value} }}".index(number) + 1)


def test_batchnorm_eps_beyond_a_float_is_located(write_spec):
    path = write_spec(GOOD.replace("linear(4) | relu", "linear(4) | batchnorm(eps=1e999) | relu"))
    error = error_of(path)
    assert error.message.startswith("number too large") and error.span.line == 3


def test_overrides_are_range_checked_too(write_spec):
    path = write_spec(GOOD)
    with pytest.raises(MinispecError) as caught:
        compile_file(path, ["lr=1e999"])
    assert caught.value.message.startswith("number too large") and caught.value.span.file == "--set lr=1e999"
    with pytest.raises(MinispecError) as caught:
        compile_file(path, ["epochs=" + "9" * 5000])
    assert caught.value.message.startswith("integer too large")


def test_emitted_mdl_prints_no_inf(write_spec):
    path = write_spec(GOOD + "train { lr 1e308  schedule step(every=2.5e-308) }\n")
    text = format_merged(read(path), "a")
    assert "inf" not in text and "1e+308" in text
    copy = path.parent / "copy.mdl"
    copy.write_text(text)
    assert compile_file(copy).train == compile_file(path).train


@pytest.mark.parametrize("name", ["a" * 5000 + ".mdl", "lib/" + "b" * 300 + ".mdl", "a\x00b.mdl", "a\x1bb.mdl", ""])
def test_include_names_no_file_can_have_are_located_errors(name, write_spec):
    path = write_spec(f'include "{name}"\n' + GOOD)
    error = error_of(path)
    assert error.span is not None and error.span.line == 1


def test_a_control_character_in_a_string_is_located(write_spec):
    path = write_spec('spec a\ninclude "x\x07y.mdl"\n')
    error = error_of(path)
    assert (error.span.line, error.span.column) == (2, 11)
