"""Placeholder substitution in run_command: checked, split first, never a shell."""

from __future__ import annotations

import pytest

from agent.protocol.placeholders import PlaceholderError, build_argv, check, placeholders

VALUES = {
    "entrypoint": "/opt/mods/m/run.py",
    "function_name": "@x:f",
    "input_file": "/w/in put.json",
    "output_file": "/w/out.json",
    "temp_dir": "/w/tmp",
}


def test_documented_commands_build_the_expected_argv() -> None:
    argv = build_argv("python3 {entrypoint} {input_file} {output_file} {temp_dir}", VALUES)
    assert argv == ["python3", "/opt/mods/m/run.py", "/w/in put.json", "/w/out.json", "/w/tmp"]
    argv = build_argv(
        "{entrypoint} MyFunction --input-file {input_file} --output-file={output_file}", VALUES
    )
    assert argv == [
        "/opt/mods/m/run.py", "MyFunction", "--input-file", "/w/in put.json",
        "--output-file=/w/out.json",
    ]  # fmt: skip


def test_values_with_shell_syntax_stay_one_literal_argument() -> None:
    hostile = {**VALUES, "input_file": "/w/x; rm -rf / $(id) `id` 'q' \"d\""}
    argv = build_argv("bash {entrypoint} {input_file}", hostile)
    assert argv == ["bash", "/opt/mods/m/run.py", hostile["input_file"]]


def test_unknown_placeholders_are_named_in_the_error() -> None:
    with pytest.raises(PlaceholderError, match=r"unknown placeholder\(s\) \{inputs\}"):
        check("python3 {entrypoint} {inputs}")


def test_entrypoint_is_required_and_braces_must_balance() -> None:
    with pytest.raises(PlaceholderError, match="must contain"):
        check("python3 run.py {input_file}")
    with pytest.raises(PlaceholderError, match="unbalanced"):
        check("python3 {entrypoint} {input_file")
    with pytest.raises(PlaceholderError, match="cannot be split"):
        check("python3 {entrypoint} 'unterminated")


def test_config_path_is_an_alias_of_module_config() -> None:
    argv = build_argv("{entrypoint} {config_path}", {**VALUES, "module_config": "/w/cfg.json"})
    assert argv == ["/opt/mods/m/run.py", "/w/cfg.json"]
    with pytest.raises(PlaceholderError, match="no value for placeholder"):
        build_argv("{entrypoint} {module_config}", VALUES)


def test_literal_braces_survive() -> None:
    assert placeholders("{entrypoint} '{{\"a\": 1}}'") == {"entrypoint"}
    assert build_argv("{entrypoint} '{{\"a\": 1}}'", VALUES)[1] == '{"a": 1}'
