"""Train a tiny transformer on dict batches, Hugging Face style, with the model's own loss.

The task is generated (no download): a padded sequence of random tokens is labelled 1 when
token 5 occurs in it more often than token 7. Batches are dicts ``{"input_ids",
"attention_mask", "labels"}`` built by the DataLoader's collate function; the learner calls
``model(**batch)`` and, with ``loss_fn=None``, trains on the loss the model returns.
``Accuracy()`` reads the outputs' ``logits`` as they are. The learning rate warms up linearly,
then follows a cosine decay.

The model is a small ``BertForSequenceClassification`` built from a ``BertConfig`` when
``transformers`` is installed, else a small ``torch.nn`` encoder with the same call signature
that returns ``{"loss", "logits"}``.

    python examples/hf_style.py                  # 8 epochs
    FLUXTRAIN_FAST=1 python examples/hf_style.py   # 3 epochs, for CI
"""

from __future__ import annotations

import os

import torch
from torch.utils.data import DataLoader

from fluxtrain import Accuracy, Learner, LearningRate, Metrics, Scheduler
from fluxtrain.schedules import cosine, warmup

FAST = os.environ.get("FLUXTRAIN_FAST") == "1"
N_EPOCHS = 3 if FAST else 8
VOCAB, PAD, CLS = 64, 0, 1  # token 0 pads, token 1 starts every sequence
MIN_LEN, MAX_LEN = 8, 24


def make_sequences(n: int, seed: int) -> list[tuple[torch.Tensor, int]]:
    """``n`` sequences of random length, tokens 5 and 7 frequent, each with its label."""
    generator = torch.Generator().manual_seed(seed)
    samples = []
    for _ in range(n):
        length = int(torch.randint(MIN_LEN, MAX_LEN + 1, (), generator=generator))
        tokens = torch.randint(2, VOCAB, (length,), generator=generator)
        pick = torch.rand(length, generator=generator)
        tokens[pick < 0.3] = 5
        tokens[(pick >= 0.3) & (pick < 0.6)] = 7
        label = int((tokens == 5).sum() > (tokens == 7).sum())
        samples.append((torch.cat([torch.tensor([CLS]), tokens]), label))
    return samples


def collate(samples: list[tuple[torch.Tensor, int]]) -> dict[str, torch.Tensor]:
    """Pads a list of samples into one dict batch of the model's keyword arguments."""
    longest = max(len(tokens) for tokens, _ in samples)
    input_ids = torch.full((len(samples), longest), PAD)
    attention_mask = torch.zeros(len(samples), longest, dtype=torch.long)
    for i, (tokens, _) in enumerate(samples):
        input_ids[i, : len(tokens)] = tokens
        attention_mask[i, : len(tokens)] = 1
    labels = torch.tensor([label for _, label in samples])
    return {"input_ids": input_ids, "attention_mask": attention_mask, "labels": labels}


class TinyEncoder(torch.nn.Module):
    """A two-layer transformer encoder with the call signature of a Hugging Face classifier."""

    def __init__(self, hidden: int = 32, num_labels: int = 2) -> None:
        super().__init__()
        self.embed = torch.nn.Embedding(VOCAB, hidden)
        self.position = torch.nn.Embedding(MAX_LEN + 1, hidden)
        layer = torch.nn.TransformerEncoderLayer(
            hidden, nhead=2, dim_feedforward=64, dropout=0.0, batch_first=True
        )
        self.encoder = torch.nn.TransformerEncoder(layer, num_layers=2, enable_nested_tensor=False)
        self.head = torch.nn.Linear(hidden, num_labels)

    def forward(self, input_ids, attention_mask, labels=None):
        positions = torch.arange(input_ids.shape[1], device=input_ids.device)
        x = self.embed(input_ids) + self.position(positions)
        x = self.encoder(x, src_key_padding_mask=attention_mask == 0)
        logits = self.head(x[:, 0])  # the first token's state, as BERT's pooler reads it
        outputs = {"logits": logits}
        if labels is not None:
            outputs["loss"] = torch.nn.functional.cross_entropy(logits, labels)
        return outputs


def make_model() -> torch.nn.Module:
    try:
        from transformers import BertConfig, BertForSequenceClassification
    except ImportError:
        print("transformers is not installed: training a torch.nn encoder instead of BERT")
        return TinyEncoder()
    config = BertConfig(
        vocab_size=VOCAB,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=MAX_LEN + 1,
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
        num_labels=2,
    )
    return BertForSequenceClassification(config)


def main() -> None:
    torch.manual_seed(0)
    train = DataLoader(
        make_sequences(4000, seed=1),
        batch_size=64,
        shuffle=True,
        collate_fn=collate,
        generator=torch.Generator().manual_seed(0),
    )
    valid = DataLoader(make_sequences(1000, seed=2), batch_size=250, collate_fn=collate)
    model = make_model()
    optimizer = torch.optim.AdamW(model.parameters(), lr=3e-3, weight_decay=0.01)

    total = N_EPOCHS * len(train)
    warmup_steps = len(train)  # one epoch of warmup, then a cosine decay to the end
    lr = warmup(cosine(3e-3, 3e-5, total - warmup_steps), start_value=1e-4, length=warmup_steps)
    learner = Learner(
        model,
        (train, valid),
        optimizer,
        None,  # the model computes its loss from the "labels" in the batch
        Metrics(Accuracy()),
        Scheduler({LearningRate: lr}),
    )
    learner.fit(N_EPOCHS)

    accuracy = learner.cbstate.metrics_epoch["valid/Accuracy"][-1]
    print(f"{type(model).__name__}: validation accuracy {accuracy:.3f}")
    threshold = 0.90 if FAST else 0.97
    if accuracy < threshold:
        raise SystemExit(f"validation accuracy {accuracy:.3f} is below {threshold}")


if __name__ == "__main__":
    main()
