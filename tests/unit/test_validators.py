"""Every validator family, passing and failing, and media types by extension or by content."""

from __future__ import annotations

import io
import struct
import zipfile
from pathlib import Path

import pytest

from agent.jobs import sniff
from agent.jobs.validators import FileFacts, check_auth, check_file, check_parameter


def facts(name: str, content: bytes = b"") -> FileFacts:
    return FileFacts(Path("/w/in") / name, content[: sniff.HEAD_BYTES], len(content))


def zipped(*members: tuple[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, data in members:
            kind = zipfile.ZIP_STORED if name == "mimetype" else zipfile.ZIP_DEFLATED
            z.writestr(name, data, compress_type=kind)
    return buf.getvalue()


def binary_stl(triangles: int) -> bytes:
    return (
        b"solid exported by a CAD tool".ljust(80)
        + struct.pack("<I", triangles)
        + (b"\x00" * 50 * triangles)
    )


# -- parameters ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "validators", "problem"),
    [
        (1, ["@number"], None),
        (1.5, ["@number"], None),
        (1, ["@integer"], None),
        (1.5, ["@integer"], "expected integer, got number"),
        ("1", ["@number"], "expected number, got string"),
        (None, ["@string"], "expected string, got null"),
        (True, ["@boolean"], None),
        (True, ["@number"], "expected number, got boolean"),
        ({"a": 1}, ["@array"], "expected array, got object"),
        ([1], ["@object"], "expected object, got array"),
        ("x", ["@number", "@string"], None),
        ([1], ["@number", "@string"], "expected number or string, got array"),
        ("x", ["@number:min=0"], "expected number, got string"),  # arguments of scalars: unused
    ],
)
def test_json_kinds(value: object, validators: list[str], problem: str | None) -> None:
    assert check_parameter(value, validators) == problem


@pytest.mark.parametrize(
    ("value", "validator", "problem"),
    [
        ([1, 2.5], "@array:number", None),
        ([], "@array:number", None),
        ([1, "2"], "@array:number", "expected array of number, got array with string at [1]"),
        ([1, True], "@array:number", "expected array of number, got array with boolean at [1]"),
        ([1, 2], "@array:integer", None),
        ([1, 2.5], "@array:integer", "expected array of integer, got array with number at [1]"),
        (["a", "b"], "@array:string", None),
        (["a", None], "@array:string", "expected array of string, got array with null at [1]"),
        ([True, False], "@array:boolean", None),
        ([0], "@array:boolean", "expected array of boolean, got array with number at [0]"),
        ([{}, {"a": 1}], "@array:object", None),
        ([[]], "@array:object", "expected array of object, got array with array at [0]"),
        ([[1]], "@array:array", None),
        ("abc", "@array:string", "expected array of string, got string"),
        ([1, "x", None], "@array:float", None),  # an unknown item kind: any array
        ({"a": "x"}, "@object:string", None),
        ({"a": "x", "b": 2}, "@object:string",
         "expected object of string values, got object with number at ['b']"),
        ({"n": 1, "m": 2.5}, "@object:number", None),
        ({"a": [1]}, "@object:array", None),
        ({"any": None}, "@object:schema-v2", None),  # an unknown value kind: any object
        ([1], "@object:string", "expected object of string values, got array"),
        ([1, 2], "@ARRAY:Number", None),  # kinds ignore case
    ],
)  # fmt: skip
def test_array_and_object_item_kinds(value: object, validator: str, problem: str | None) -> None:
    assert check_parameter(value, [validator]) == problem


def test_a_container_passes_when_any_alternative_fits() -> None:
    assert check_parameter(["a"], ["@array:number", "@array:string"]) is None
    assert check_parameter([1, "a"], ["@array:number", "@array:string"]) == (
        "expected array of number or array of string, got array with string at [1]"
    )


@pytest.mark.parametrize(
    "validators",
    [
        ["@range:0:10"],  # unknown to this agent
        ["@number", "@uuid"],  # one alternative accepts anything
        ["@extension:stl"],  # another input type's family
        ["@token:svc"],
        [],
    ],
)
def test_validators_outside_the_parameter_family_accept_anything(validators: list[str]) -> None:
    assert check_parameter("not a number", validators) is None


# -- files: extensions -----------------------------------------------------------------------


def test_extensions_ignore_case_and_a_leading_dot() -> None:
    assert check_file(facts("part.STL"), ["@extension:stl"], None) is None
    assert check_file(facts("part.stl"), ["@extension:.STL"], None) is None
    assert check_file(facts("part.step"), ["@extension:stl", "@extension:STEP"], None) is None
    assert check_file(facts("data.tar.gz"), ["@extension:tar.gz"], None) is None
    assert check_file(facts("part.obj"), ["@extension:stl", "@extension:step"], None) == (
        "'part.obj' is not a .stl or .step file"
    )
    assert check_file(facts("stl"), ["@extension:stl"], None) is not None  # no suffix at all
    assert check_file(facts("partstl"), ["@extension:stl"], None) is not None


@pytest.mark.parametrize("validators", [["@string"], ["@extension:stl", "@novel"], [],
                                        ["@extension"], ["@jwt:x"]])  # fmt: skip
def test_validators_outside_the_file_family_accept_any_file(validators: list[str]) -> None:
    assert check_file(facts("part.obj"), validators, None) is None


# -- files: user_link metadata suffixes ------------------------------------------------------

DECK = "deck.istari_google_drive_metadata_presentation"


@pytest.mark.parametrize(
    ("validator", "tool_key"),
    [
        ("@extension:istari_{tool_key}_metadata", "google_drive"),  # literal, the manifest's key
        ("@extension:istari_google_drive_metadata", None),  # already substituted
        ("@extension:istari_google_drive_metadata", "something_else"),
        ("@extension:.ISTARI_Google_Drive_METADATA", None),
        ("@extension:istari_{tool_key}_metadata", None),  # no tool key: any tool's metadata
    ],
)
def test_a_metadata_suffix_matches_by_prefix(validator: str, tool_key: str | None) -> None:
    assert check_file(facts(DECK), [validator], tool_key) is None
    assert check_file(facts("x.istari_google_drive_metadata"), [validator], tool_key) is None


@pytest.mark.parametrize(
    ("name", "tool_key"),
    [
        ("deck.istari_onedrive_metadata_presentation", "google_drive"),  # another tool
        ("deck.istari_google_drive_metadataX", "google_drive"),  # not a `_<kind>` suffix
        ("deck.pptx", "google_drive"),
        ("istari_google_drive_metadata_presentation", "google_drive"),  # no dot: no extension
        ("deck.istari_google_drive_metadata_presentation.bak", "google_drive"),
    ],
)
def test_a_metadata_suffix_refuses_other_files(name: str, tool_key: str) -> None:
    problem = check_file(facts(name), ["@extension:istari_{tool_key}_metadata"], tool_key)
    assert problem == f"{name!r} is not a .istari_google_drive_metadata_<kind> file"


def test_the_metadata_refusal_shows_a_literal_tool_key_when_none_is_known() -> None:
    problem = check_file(facts("a.txt"), ["@extension:istari_{tool_key}_metadata"], None)
    assert problem == "'a.txt' is not a .istari_{tool_key}_metadata_<kind> file"


# -- files: media types ----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "pattern"),
    [
        ("report.pdf", "application/pdf"),
        ("photo.PNG", "image/png"),
        ("photo.png", "image/*"),
        ("anything.bin", "*/*"),
        ("sheet.xlsx", "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("sheet.xlsx", "application/zip"),  # an Office file is a ZIP container
        ("part.stl", "model/stl"),
        ("part.stl", "application/sla"),  # the same type by another name
        ("data.json", "application/json; charset=utf-8"),
        ("data.tar.gz", "application/gzip"),
        ("data.tar.gz", "application/x-tar"),
    ],
)
def test_mime_type_by_extension(name: str, pattern: str) -> None:
    # The content says nothing of the kind: the extension decides when it maps to a type.
    assert check_file(facts(name, b"hello"), [f"@mime_type:{pattern}"], None) is None


def test_a_mapped_extension_decides_even_when_the_content_disagrees() -> None:
    problem = check_file(facts("notes.txt", b"%PDF-1.7"), ["@mime_type:application/pdf"], None)
    assert problem == (
        "'notes.txt' is not of type application/pdf (it is text/plain, by its extension)"
    )


OOXML = "application/vnd.openxmlformats-officedocument."


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b"%PDF-1.7\n", "application/pdf"),
        (b"\x89PNG\r\n\x1a\n" + bytes(16), "image/png"),
        (b"\xff\xd8\xff\xe0" + bytes(16), "image/jpeg"),
        (b"GIF89a" + bytes(8), "image/gif"),
        (b"II*\x00" + bytes(8), "image/tiff"),
        (b"\x1f\x8b\x08\x00" + bytes(8), "application/gzip"),
        (b"\x89HDF\r\n\x1a\n" + bytes(8), "application/x-hdf5"),
        (b"SQLite format 3\x00" + bytes(84), "application/vnd.sqlite3"),
        (zipped(("a.txt", b"x")), "application/zip"),
        (zipped(("[Content_Types].xml", b"<x/>"), ("word/document.xml", b"<w/>")),
         OOXML + "wordprocessingml.document"),
        (zipped(("[Content_Types].xml", b"<x/>"), ("xl/workbook.xml", b"<w/>")),
         OOXML + "spreadsheetml.sheet"),
        (zipped(("[Content_Types].xml", b"<x/>"), ("ppt/presentation.xml", b"<p/>")),
         OOXML + "presentationml.presentation"),
        (zipped(("mimetype", b"application/vnd.oasis.opendocument.spreadsheet")),
         "application/vnd.oasis.opendocument.spreadsheet"),
        (binary_stl(3), "model/stl"),  # its header even starts with "solid"
        (b"solid bracket\n  facet normal 0 0 1\n", "model/stl"),
        (b"ISO-10303-21;\nHEADER;\n", "model/step"),
        (b'<?xml version="1.0"?><a/>', "application/xml"),
        (b'{"a": [1, 2]}', "application/json"),
        (b"\xef\xbb\xbf[1, 2]", "application/json"),
        (b"{not json", "text/plain"),
        ("temperature,sensor\n21.5,é\n".encode(), "text/plain"),
        (b"\x00\x01\x02binary", "application/octet-stream"),
        (b"\xff\xfe\xfd", "application/octet-stream"),
    ],
)  # fmt: skip
def test_sniffing_by_content(content: bytes, expected: str) -> None:
    assert sniff.sniff(content[: sniff.HEAD_BYTES], len(content))[0] == expected
    # With no extension to go by, the validator sees the sniffed type (and a ZIP's parent).
    assert check_file(facts("upload", content), [f"@mime_type:{expected}"], None) is None


def test_a_sniffed_office_file_is_also_a_zip() -> None:
    content = zipped(("[Content_Types].xml", b"<x/>"), ("xl/workbook.xml", b"<w/>"))
    assert check_file(facts("upload", content), ["@mime_type:application/zip"], None) is None


def test_a_binary_stl_must_have_the_size_its_triangle_count_says() -> None:
    assert sniff.sniff(binary_stl(2), len(binary_stl(2))) == ["model/stl"]
    assert sniff.sniff(binary_stl(2), len(binary_stl(2)) + 1) != ["model/stl"]


def test_a_long_json_file_is_judged_by_its_head() -> None:
    content = b"[" + b"1, " * 40000 + b"1]"
    head = content[: sniff.HEAD_BYTES]
    assert sniff.sniff(head, len(content)) == ["application/json"]
    # A UTF-8 character cut by the end of the head is still text.
    cut = ("é" * sniff.HEAD_BYTES).encode()
    assert sniff.sniff(cut[: sniff.HEAD_BYTES - 1], len(cut)) == ["text/plain"]


def test_an_unknown_or_octet_stream_extension_is_sniffed() -> None:
    png = b"\x89PNG\r\n\x1a\n" + bytes(16)
    for name in ("scan", "scan.dat", "scan.bin", "scan.obj.unknownext"):
        assert check_file(facts(name, png), ["@mime_type:image/*"], None) is None, name


def test_a_mime_mismatch_says_what_the_file_is_and_how_that_was_found() -> None:
    problem = check_file(facts("upload", b"hello"), ["@mime_type:image/*"], None)
    assert problem == "'upload' is not of type image/* (it is text/plain, by its content)"


def test_extension_and_mime_type_are_alternatives() -> None:
    validators = ["@extension:stl", "@mime_type:application/pdf"]
    assert check_file(facts("part.stl", b"solid x facet"), validators, None) is None
    assert check_file(facts("upload", b"%PDF-1.4"), validators, None) is None
    assert check_file(facts("upload", b"hello"), validators, None) == (
        "'upload' is not a .stl file, nor of type application/pdf (it is text/plain, by its "
        "content)"
    )


@pytest.mark.parametrize(
    ("pattern", "media_type", "fits"),
    [
        ("image/*", "image/png", True),
        ("image/*", "application/png", False),
        ("*", "text/plain", True),
        ("IMAGE/PNG", "image/png", True),
        ("text/xml", "application/xml", True),
        ("image/png", "image/jpeg", False),
    ],
)
def test_media_type_patterns(pattern: str, media_type: str, fits: bool) -> None:
    assert sniff.matches(pattern, media_type) is fits


# -- credentials -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("delivered", "validators", "problem"),
    [
        ("token", ["@token:service"], None),
        ("jwt", ["@oauth2:google", "@jwt:google"], None),
        ("OAuth2", ["@oauth2:google"], None),
        ("basic", ["@basic:x"], None),
        ("cas_delegated_3dx", ["@cas_delegated_3dx:3dx"], None),
        ("oauth1", ["@oauth1:x"], None),
        ("basic", ["@token:service"],
         "a basic credential was delivered; this input takes token"),
        ("jwt", ["@oauth2:a", "@oauth1:b", "@oauth2:c"],
         "a jwt credential was delivered; this input takes oauth2 or oauth1"),
        (None, ["@token:service"], None),  # a delivery without a type cannot be checked
        ("basic", ["@token:service", "@kerberos:realm"], None),  # unknown: accepts anything
        ("basic", ["@string"], None),  # another family: accepts anything
    ],
)  # fmt: skip
def test_auth_types(delivered: str | None, validators: list[str], problem: str | None) -> None:
    assert check_auth(delivered, validators) == problem
