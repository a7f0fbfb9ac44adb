from llmos.train.batching import inference_batches, training_batches


def padded_tokens(batches, lengths):
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


def test_training_batches_cover_every_row_once_and_are_seeded():
    lengths = [(i * 37) % 61 + 1 for i in range(1000)]
    batches = training_batches(lengths, 32, seed=3)
    assert sorted(i for b in batches for i in b) == list(range(1000))
    assert batches == training_batches(lengths, 32, seed=3)
    assert batches != training_batches(lengths, 32, seed=4)


def test_length_grouping_cuts_padding():
    lengths = [(i * 37) % 61 + 1 for i in range(2000)]
    grouped = padded_tokens(training_batches(lengths, 32, 0, group_by_length=True), lengths)
    plain = padded_tokens(training_batches(lengths, 32, 0, group_by_length=False), lengths)
    assert grouped < 0.7 * plain


def test_inference_batches_sorted_by_length():
    lengths = [5, 1, 9, 3, 7]
    batches = inference_batches(lengths, 2)
    assert [i for b in batches for i in b] == [1, 3, 0, 4, 2]


def test_inference_batches_cap_padded_tokens():
    lengths = [30, 5, 6, 5, 7, 40, 6, 5, 12, 8]
    batches = inference_batches(lengths, batch_size=4, max_tokens=24)
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))
    for batch in batches:
        longest = max(lengths[i] for i in batch)
        assert len(batch) <= 4
        assert len(batch) * longest <= 24 or len(batch) == 1  # a row longer than the cap travels alone
    assert [len(b) for b in batches] == [4, 3, 1, 1, 1]
    assert inference_batches(lengths, 4) == inference_batches(lengths, 4, None)
