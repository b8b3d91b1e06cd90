"""The model contract's metadata codec: what the exporter writes, the runtime reads back, and
every malformed field is refused with the field named."""

import json

import pytest

from gnuradio.modrec import contract

GOOD = {
    "classes": ["BPSK", "QPSK"],
    "frame_len": 128,
    "samples_per_symbol": 8,
    "architecture": "cnn3",
    "distillation": "none",
    "pruning": "none",
    "exits": 1,
    "params": 1000,
    "flops": 20000,
    "training": {"command": "modrec train --config configs/x.yaml", "seed": 0, "data": "synthetic"},
}


def test_round_trip():
    props = contract.encode_metadata(GOOD)
    assert all(isinstance(v, str) for v in props.values())
    assert props["version"] == contract.CONTRACT_VERSION
    decoded = contract.decode_metadata(props)
    for key, value in GOOD.items():
        assert decoded[key] == value, key


def test_encode_refuses_missing_fields():
    values = dict(GOOD)
    del values["flops"]
    with pytest.raises(contract.ContractError, match="lacks flops"):
        contract.encode_metadata(values)


@pytest.mark.parametrize(
    "field, value, message",
    [
        ("frame_len", "many", r"m.onnx: metadata field 'frame_len' should be an integer, got 'many'"),
        ("frame_len", "0", r"'frame_len' must be > 0, got 0"),
        ("samples_per_symbol", "-8", r"'samples_per_symbol' must be > 0, got -8"),
        ("exits", "0", r"'exits' must be >= 1"),
        ("classes", "[]", r"'classes' should be a non-empty JSON list of strings"),
        ("classes", "BPSK,QPSK", r"'classes' is not valid JSON"),
        ("training", "[1, 2]", r"'training' should be a JSON object"),
        ("version", "2", r"'version' is '2', but this gr-modrec reads contract version '1'"),
    ],
)
def test_decode_names_the_bad_field(field, value, message):
    props = contract.encode_metadata(GOOD)
    props[field] = value
    with pytest.raises(contract.ContractError, match=message):
        contract.decode_metadata(props, source="m.onnx")


def test_decode_names_missing_fields():
    props = contract.encode_metadata(GOOD)
    del props["architecture"], props["params"]
    with pytest.raises(contract.ContractError, match=r"m.onnx: metadata_props lacks required field\(s\) architecture, params"):
        contract.decode_metadata(props, source="m.onnx")


def test_json_fields_survive_as_json():
    props = contract.encode_metadata(GOOD)
    assert json.loads(props["classes"]) == GOOD["classes"]
    assert json.loads(props["training"]) == GOOD["training"]
