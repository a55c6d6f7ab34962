import numpy as np
import pytest

from layerwise import layers
from layerwise.errors import LayerRangeError, LayerSpecError


@pytest.mark.parametrize(
    ("text", "expected"),
    [("all", (0, 1, 2, 3, 4, 5, 6)), ("-1", (6,)), ("0", (0,)), ("-4:", (3, 4, 5, 6)), ("1:3", (1, 2)),
     ("0,3,6", (0, 3, 6)), (":2", (0, 1)), ("6,-1", (6,))],
)
def test_selection_resolves_hf_indices(text, expected):
    assert layers.parse(text).resolve(7) == expected


@pytest.mark.parametrize("text", ["7", "-8", "0,9"])
def test_out_of_range_names_the_valid_range(text):
    with pytest.raises(LayerRangeError, match=r"out of range: this model has hidden states 0\.\.6"):
        layers.parse(text).resolve(7)


def test_issue_message_for_layer_nine():
    with pytest.raises(LayerRangeError, match="layer 9 is out of range: this model has hidden states 0..6"):
        layers.parse("9").resolve(7)


@pytest.mark.parametrize("text", ["", "abc", "1-3", "mean()", "wsum(-4:)", "foo(-1)", "wsum(-2:; a,b)", "mean(-2:; 1,2)", "firstlast(1)"])
def test_bad_specs_raise_spec_errors(text):
    with pytest.raises(LayerSpecError):
        layers.parse(text)


def test_weight_count_must_match_layers():
    with pytest.raises(LayerSpecError, match="3 weights for 4 layers"):
        layers.parse("wsum(-4:; 1,2,3)").resolve(7)


def test_mix_round_trips_through_str():
    for text in ["mean(-4:)", "wsum(-4:; 0.1,0.2,0.3,0.4)", "concat(-2:)", "firstlast()", "mean(0,6; raw)"]:
        spec = layers.parse(text)
        assert layers.parse(str(spec)) == spec


def test_mix_apply_matches_numpy():
    rng = np.random.default_rng(0)
    stack = rng.normal(size=(5, 4, 8)).astype(np.float32)
    w = np.array([0.1, 0.2, 0.3, 0.4], dtype=np.float32)
    unit = stack / np.linalg.norm(stack, axis=-1, keepdims=True)
    got = layers.parse("wsum(-4:; 0.1,0.2,0.3,0.4)").apply(stack, 7)
    np.testing.assert_allclose(got, (unit * w[None, :, None]).sum(1), rtol=1e-6)
    raw = layers.parse("mean(-4:; raw)").apply(stack, 7)
    np.testing.assert_allclose(raw, stack.mean(1), rtol=1e-5, atol=1e-6)
    cat = layers.parse("concat(-2:)").apply(stack[:, 2:], 7)
    assert cat.shape == (5, 16)


def test_firstlast_means_layer_one_and_last():
    assert layers.parse("firstlast()").resolve(7) == (1, 6)
