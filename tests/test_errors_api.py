"""Bad input through the API: one clear error each (what was expected, given, what to do)."""

from __future__ import annotations

import pytest

import symtrans as st

from .conftest import PROMPT


@pytest.fixture(scope="module")
def model(bridge):  # type: ignore[no-untyped-def]
    return bridge("tiny-capitals")


def test_multi_token_answer_lists_tokens_and_suggests(model):
    with pytest.raises(st.TokenizationError) as info:
        st.decompose(model, PROMPT, answer="Ireland is")
    msg = str(info.value)
    assert "'Ireland is'" in msg and "tokens" in msg and "[" in msg


def test_missing_leading_space_suggests_single_token_form(model):
    ids = model.tokenizer.encode("Ireland", add_special_tokens=False)
    if len(ids) == 1:
        pytest.fail("the embedded tokenizer should not hold 'Ireland' without its space")
    with pytest.raises(st.TokenizationError, match="' Ireland'"):
        st.decompose(model, PROMPT, answer="Ireland")


def test_empty_prompt(model):
    with pytest.raises(st.TokenizationError, match="empty"):
        st.decompose(model, "", answer=" Ireland")


def test_position_out_of_range(model):
    with pytest.raises(st.InvalidArgumentError, match="out of range"):
        st.decompose(model, PROMPT, answer=" Ireland", position=99)


def test_answer_equal_to_vs(model):
    with pytest.raises(st.TokenizationError, match="same token"):
        st.decompose(model, PROMPT, answer=" Ireland", vs=" Ireland")


def test_unknown_split(model):
    with pytest.raises(st.InvalidArgumentError, match="unknown split 'rows'.*'heads'"):
        st.decompose(model, PROMPT, answer=" Ireland", split="rows")  # type: ignore[arg-type]


def test_prompt_longer_than_context(model):
    with pytest.raises(st.TokenizationError, match="context holds"):
        st.decompose(model, "Dublin " * 200, answer=" Ireland")


def test_unknown_model_name():
    with pytest.raises(st.ModelNotFoundError, match="tiny-capitals"):
        st.load_model("./no/such/dir")


def test_not_a_model():
    with pytest.raises(st.InvalidArgumentError, match="TransformerBridge"):
        st.decompose(42, PROMPT, answer=" Ireland")


def test_batch_answers_length_mismatch(model):
    with pytest.raises(st.InvalidArgumentError, match="one entry per prompt"):
        st.decompose(model, [PROMPT, PROMPT], answer=[" Ireland"])


def test_errors_share_one_base():
    for cls in (
        st.IdentityError,
        st.TokenizationError,
        st.UnsupportedModelError,
        st.ModelNotFoundError,
        st.InvalidArgumentError,
    ):
        assert issubclass(cls, st.SymtransError)
