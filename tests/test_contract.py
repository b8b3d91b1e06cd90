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
        ("version", "3", r"'version' is '3', but this gr-modrec reads contract versions 1, 2"),
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


def test_required_keys_are_the_shipped_ones():
    # CONTRACT_VERSION "1": these names are in every model file already shipped
    assert contract.REQUIRED_METADATA == ("classes", "frame_len", "samples_per_symbol", "architecture", "distillation",
                                          "pruning", "exits", "params", "flops", "training", "version")
    assert contract.EXIT_METADATA == ("exit_stages", "exit_policy", "exit_thresholds", "exit_gates", "exit_flops",
                                      "exit_all", "exit_placements")
    assert contract.EXIT_POLICIES == ("entropy", "maxprob", "gate")


EARLY_EXIT = {
    **GOOD, "exits": 3,
    "exit_stages": '["m.stage0.onnx", "m.stage1.onnx", "m.stage2.onnx"]', "exit_policy": "entropy",
    "exit_thresholds": "[0.1, 0.2]", "exit_flops": "[10, 20, 30]", "exit_all": "m.exits.onnx", "exit_placements": "[1, 2]",
}


def test_exit_fields_decode():
    exits = contract.decode_exit_metadata(EARLY_EXIT, source="m.onnx")
    assert exits.stages == ("m.stage0.onnx", "m.stage1.onnx", "m.stage2.onnx") and exits.n_exits == 3
    assert exits.policy == "entropy" and exits.thresholds == (0.1, 0.2) and exits.gates is None
    assert exits.flops == (10, 20, 30) and exits.all_exits == "m.exits.onnx" and exits.placements == (1, 2)
    bare = {k: v for k, v in EARLY_EXIT.items() if k not in ("exit_flops", "exit_all", "exit_placements")}
    exits = contract.decode_exit_metadata(bare)
    assert exits.flops is None and exits.all_exits is None and exits.placements is None
    gate = {"w1": [[0.0]], "b1": [0.0], "w2": [0.0], "b2": 0.0}
    gated = contract.decode_exit_metadata({**EARLY_EXIT, "exit_policy": "gate", "exit_gates": json.dumps([gate, gate])})
    assert gated.gates == (gate, gate)
    assert contract.is_early_exit(EARLY_EXIT) and not contract.is_early_exit(GOOD)
    assert not contract.is_early_exit({**EARLY_EXIT, "exits": 1})


@pytest.mark.parametrize(
    "changes, message",
    [
        ({"exit_stages": None}, r"m.onnx: early-exit metadata lacks exit_stages"),
        ({"exit_thresholds": None}, r"m.onnx: early-exit metadata lacks exit_thresholds"),
        ({"exit_stages": "m.stage0.onnx"}, r"m.onnx: metadata field 'exit_stages' is not valid JSON"),
        ({"exit_stages": '{"a": 1}'}, r"m.onnx: metadata field 'exit_stages' should be a non-empty JSON list of stage file"),
        ({"exit_stages": '["a", ""]'}, r"'exit_stages' should be a non-empty JSON list"),
        ({"exit_thresholds": '[0.1, "x"]'}, r"m.onnx: metadata field 'exit_thresholds' should be a JSON list of numbers"),
        ({"exit_thresholds": "[0.1, true]"}, r"'exit_thresholds' should be a JSON list of numbers"),
        ({"exit_thresholds": "[0.1]"}, r"m.onnx: exits = 3 but 3 stage files and 1 thresholds"),
        ({"exits": 2}, r"m.onnx: exits = 2 but 3 stage files and 2 thresholds"),
        ({"exit_flops": "[10, -1, 3]"}, r"m.onnx: metadata field 'exit_flops' should be a JSON list of integers >= 0"),
        ({"exit_flops": "[10, 20]"}, r"m.onnx: metadata field 'exit_flops' lists 2 stage cost\(s\) for 3 stage files"),
        ({"exit_policy": "coin"}, r"m.onnx: exit_policy must be one of entropy, maxprob, gate, got 'coin'"),
        ({"exit_policy": "gate"}, r"m.onnx: exit_policy is 'gate' but the metadata lacks exit_gates"),
        ({"exit_policy": "gate", "exit_gates": "[{}]"}, r"m.onnx: exit_gates should list 2 gate\(s\), one per early exit"),
        ({"exit_policy": "gate", "exit_gates": "[1, 2]"}, r"m.onnx: exit_gates should list JSON objects"),
        ({"exit_placements": "[1]"}, r"m.onnx: metadata field 'exit_placements' should be a JSON list of 2 integer"),
    ],
)
def test_exit_fields_name_file_and_field(changes, message):
    metadata = {**EARLY_EXIT, **changes}
    metadata = {k: v for k, v in metadata.items() if v is not None}
    with pytest.raises(contract.ContractError, match=message):
        contract.decode_exit_metadata(metadata, source="m.onnx")


def test_pruning_codec():
    assert contract.encode_pruning() == contract.PRUNING_NONE == "none"
    assert contract.encode_pruning("bn-gamma", 0.37) == "bn-gamma:0.37"
    assert contract.decode_pruning("none") is None
    assert contract.decode_pruning("gamma-redundancy:0.3") == ("gamma-redundancy", 0.3)
    for bad in ("l1", "l1:x", ":0.5", "l1:1.5", "l1:0"):
        with pytest.raises(contract.ContractError, match=r"m.onnx: metadata field 'pruning' should be 'none' or"):
            contract.decode_pruning(bad, source="m.onnx")


def test_no_module_spells_out_an_exit_key():
    """The keys live in contract.py; the exporter and the runtime use its constants."""
    from pathlib import Path

    package = Path(contract.__file__).parent
    files = [*sorted((package / "runtime").glob("*.py")), package / "classifier.py", package / "training" / "export.py",
             package / "training" / "exits" / "export.py"]
    for path in files:
        text = path.read_text()
        for key in contract.EXIT_METADATA:
            assert f'"{key}"' not in text and f"'{key}'" not in text, f"{path.name} spells out {key}"
