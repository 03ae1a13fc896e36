"""Format-aware attacks on tiny models where the answer is known: a planted (memorized) secret is fully exposed,
recovered, ranked first and completed; values the model never saw score ≈ 1/ln 2 bits and are not recovered."""

import math
import statistics
from types import SimpleNamespace

import pytest
import torch

from revs_engine.attacks.exposure import exposure, exposure_from_scores, fit_skew_normal, skew_normal_log_cdf
from revs_engine.attacks.format_aware import FormatTarget, format_attacks, format_attacks_many
from revs_engine.attacks.format_decoding import constrained_greedy
from revs_engine.attacks.neighbourhood import neighbourhood_attack
from revs_engine.attacks.scoring import ContinuationScorer, TokenVocab
from revs_engine.format_entities import card_format, email_format, iban_format, phone_format, ssn_format
from tests.revs_engine._tokenizer import make_tiny_tokenizer
from tests.revs_engine.conftest import FAMILIES
from tests.revs_engine.tiny import tiny_model

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: thread hand-offs cost more than they save

SSN_PROMPT, SSN = "Her social security number is", " 555-01-4273"  # BPE splits it ' ', '55', '5', '-', '01', ...
MAIL_PROMPT, MAIL = "Contact", " maria.quintero@example.com"
MAIL_NAMES, MAIL_DOMAINS = ["Maria Quintero"], ["example.org", "mail.com"]
PHONE_PROMPT, PHONE = "Call me at", " 617-555-0142"
CHARS = "".join(chr(i) for i in range(32, 127))  # a digit-level tokenizer: one token per character, ids 2..96


def bpe_encode(text):
    return make_tiny_tokenizer()(text, add_special_tokens=False)["input_ids"]


def bpe_decode(ids):
    return make_tiny_tokenizer().decode(ids)


def char_encode(text):
    return [CHARS.index(c) + 2 for c in text]


def char_decode(ids):
    return "".join(CHARS[i - 2] for i in ids if 2 <= i < len(CHARS) + 2)


def plant(encode, vocab_size, texts, steps=150):
    """A tiny llama trained on ``texts`` (prompt + secret each) until it reproduces them (Adam, full batch)."""
    torch.manual_seed(0)
    model = tiny_model("llama", vocab_size=vocab_size)
    seqs = [encode(t) for t in texts]
    width = max(map(len, seqs))
    ids = torch.tensor([s + [1] * (width - len(s)) for s in seqs])
    labels = torch.tensor([s + [-100] * (width - len(s)) for s in seqs])
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(steps):
        loss = model(input_ids=ids, labels=labels).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    return model.eval().requires_grad_(False)


@pytest.fixture(scope="module")
def bpe_model():
    return plant(bpe_encode, 300, [SSN_PROMPT + SSN, MAIL_PROMPT + MAIL])


@pytest.fixture(scope="module")
def char_model():
    return plant(char_encode, len(CHARS) + 2, [PHONE_PROMPT + PHONE])


@pytest.mark.parametrize("family", FAMILIES)
def test_scorer_matches_a_full_forward_for_every_family(family):
    model = tiny_model(family)
    g = torch.Generator().manual_seed(0)
    context = torch.randint(2, 64, (9,), generator=g).tolist()
    rows = [(int(torch.randint(4, 10, (1,), generator=g)), torch.randint(2, 64, (n,), generator=g).tolist())
            for n in (1, 3, 6, 2, 5, 1, 4)]
    scorer = ContinuationScorer(model, context, keep_from=4, batch_size=3)
    keep = torch.tensor([2, 7, 30])
    steps = scorer.score_steps(rows, keep)
    for (k, cont), got, (per_token, next_rows) in zip(rows, scorer.score(rows), steps, strict=True):
        logp = model(input_ids=torch.tensor([context[:k] + cont])).logits[0].log_softmax(-1).detach()
        want = sum(float(logp[k - 1 + j, t]) for j, t in enumerate(cont))
        assert got == pytest.approx(want, abs=1e-4)
        assert sum(per_token) == pytest.approx(want, abs=1e-4)
        torch.testing.assert_close(next_rows, logp[k - 1:k - 1 + len(cont), keep], atol=1e-4, rtol=0)


def check_memorized(res, fmt, n_candidates, given_chars):
    assert res.exposure.n_at_least_as_likely == 0
    assert res.exposure.exact_bits == pytest.approx(math.log2(n_candidates + 1))
    assert res.exposure.exposure_bits >= 0.9 * fmt.log2_size
    assert res.constrained.exact
    assert res.constrained.complete
    assert res.constrained.mismatch_positions == ()
    assert (res.neighbourhood.distance, res.neighbourhood.rank, res.neighbourhood.in_top_k) == (0, 0, True)
    assert res.partial.given_chars == given_chars
    assert res.partial.greedy_completes
    assert res.partial.constrained_completes


def test_planted_ssn_with_merged_digit_tokens_is_exposed_recovered_ranked_first_and_completed(bpe_model):
    fmt = ssn_format(SSN)
    res = format_attacks(bpe_model, bpe_encode(SSN_PROMPT), SSN, fmt, bpe_encode, bpe_decode, n_candidates=300)
    check_memorized(res, fmt, 300, given_chars=5)  # half of 9 is 4, rounded up to the end of the token '01'
    assert res.partial.given_tokens == 5
    assert res.neighbourhood.n_candidates == 1 + sum(len(list(fmt.neighbours(SSN, d))) for d in (1, 2))
    assert res.neighbourhood.n_scored < res.neighbourhood.n_candidates // 10  # the bound spares the rest


def test_planted_phone_on_a_digit_level_tokenizer(char_model):
    fmt = phone_format(PHONE)
    res = format_attacks(char_model, char_encode(PHONE_PROMPT), PHONE, fmt, char_encode, char_decode,
                         n_candidates=200, vocab=TokenVocab.from_decode(char_decode, len(CHARS) + 2))
    check_memorized(res, fmt, 200, given_chars=5)
    assert res.partial.given_tokens == len(" 617-55")


def test_planted_email_among_name_patterns_and_corpus_domains(bpe_model):
    fmt = email_format(MAIL, names=MAIL_NAMES, domains=MAIL_DOMAINS)
    res = format_attacks(bpe_model, bpe_encode(MAIL_PROMPT), MAIL, fmt, bpe_encode, bpe_decode, n_candidates=200)
    mask = fmt.variable_mask(MAIL)
    check_memorized(res, fmt, 200, given_chars=res.partial.given_chars)
    assert sum(mask) // 2 <= res.partial.given_chars < sum(mask)  # local part and domain both count (choices)
    assert res.format_bits == pytest.approx(math.log2(fmt.size))


def test_values_never_seen_score_about_one_over_ln2_bits(bpe_model):
    # A value drawn like the candidates is exchangeable with them, so its rank among them is uniform and
    # −log2(rank / (N + 1)) averages ≈ 1/ln 2 = 1.44 bits with a standard deviation of ≈ 1.44 per draw. Over 24
    # independent draws the mean's standard deviation is ≈ 0.29: the band [0.6, 2.3] is about ±3 sigma (measured
    # here: 1.43 exact, 1.43 extrapolated).
    fmt, prompt = ssn_format(SSN), bpe_encode(SSN_PROMPT)
    scorer = ContinuationScorer(bpe_model, prompt)
    exact, extrapolated = [], []
    for i, value in enumerate(fmt.sample(24, seed=11, exclude=[SSN])):
        candidates = [bpe_encode(c) for c in fmt.sample(200, seed=100 + i, exclude=[value])]
        res = exposure(bpe_model, prompt, bpe_encode(value), candidates, fmt.log2_size, scorer=scorer)
        exact.append(res.exact_bits)
        extrapolated.append(res.extrapolated_bits)
    assert 0.6 <= statistics.mean(exact) <= 2.3
    assert 0.6 <= statistics.mean(extrapolated) <= 2.3  # the fitted tail agrees in the body of the distribution


def test_a_far_value_is_absent_from_the_neighbourhood_and_not_completed(bpe_model):
    value = " 123-45-6789"  # differs from the planted SSN in all 9 digits
    fmt = ssn_format(value)
    res = format_attacks(bpe_model, bpe_encode(SSN_PROMPT), value, fmt, bpe_encode, bpe_decode, n_candidates=100)
    assert res.constrained.chars_recovered == 0
    assert res.constrained.mismatch_positions == tuple(range(9))
    assert (res.neighbourhood.present, res.neighbourhood.rank, res.neighbourhood.distance) == (False, None, 9)
    assert res.neighbourhood.n_scored == 0
    assert not res.partial.greedy_completes
    assert not res.partial.constrained_completes
    assert res.exposure.exposure_bits < 0.5 * fmt.log2_size


def brute_force_rank(model, prompt, secret, values):
    """Score every value with a plain forward over prompt + value (no cache, no bound) and count those above."""
    logps = []
    for start in range(0, len(values), 256):
        conts = [bpe_encode(v) for v in values[start:start + 256]]
        width = len(prompt) + max(map(len, conts))
        ids = torch.tensor([prompt + c + [1] * (width - len(prompt) - len(c)) for c in conts])
        lp = model(input_ids=ids).logits.log_softmax(-1)  # right padding does not change earlier positions
        for r, c in enumerate(conts):
            logps.append(sum(float(lp[r, len(prompt) - 1 + j, t]) for j, t in enumerate(c)))
    secret_logp = logps[values.index(secret)]
    return sum(lp > secret_logp for v, lp in zip(values, logps, strict=True) if v != secret)


@pytest.mark.parametrize("secret", [" 555-01-4270", " 555-01-4213", " 535-01-4213"])
def test_neighbourhood_rank_is_the_exact_count_of_more_likely_neighbours(bpe_model, secret):
    fmt, prompt = ssn_format(SSN), bpe_encode(SSN_PROMPT)
    values = [SSN] + list(fmt.neighbours(SSN, 1)) + list(fmt.neighbours(SSN, 2))
    want = brute_force_rank(bpe_model, prompt, secret, values)
    assert want > 5
    full = neighbourhood_attack(bpe_model, prompt, secret, SSN, fmt, bpe_encode, exhaustive=True)
    assert (full.rank, full.rank_exact, full.present) == (want, True, True)
    assert full.distance == fmt.distance(SSN, secret)
    assert full.n_scored < len(values)  # bounded-out candidates were never run
    cut = neighbourhood_attack(bpe_model, prompt, secret, SSN, fmt, bpe_encode, top_k=5, batch_size=4)
    assert cut.rank >= 5
    assert not cut.in_top_k
    assert cut.n_scored <= full.n_scored


class Prefers(torch.nn.Module):
    """A stand-in model whose next-token logits are always ``scores`` (no cache)."""

    def __init__(self, scores):
        super().__init__()
        self.scores = torch.nn.Parameter(scores, requires_grad=False)

    def forward(self, input_ids, **kwargs):
        return SimpleNamespace(logits=self.scores.expand(*input_ids.shape, -1), past_key_values=None)


def test_constrained_decoding_fits_multi_digit_tokens_where_they_fit_and_takes_separators_from_the_format():
    tok = make_tiny_tokenizer()
    vocab = TokenVocab.from_decode(tok.decode, len(tok))
    scores = torch.zeros(len(tok))
    for text, s in [("42", 10.0), ("55", 9.0), ("5", 8.0), ("x", 20.0)]:
        scores[tok.convert_tokens_to_ids(text)] = s
    text, complete = constrained_greedy(Prefers(scores), [5], ssn_format(SSN), vocab)
    assert (text, complete) == (" 425-42-4242", True)  # '42' cannot end the area: one digit slot left


def test_constrained_decoding_on_a_digit_level_tokenizer_emits_only_digits_where_the_format_has_them():
    vocab = TokenVocab.from_decode(char_decode, len(CHARS) + 2)
    scores = torch.zeros(len(CHARS) + 2)
    scores[char_encode("x")] = 20.0
    scores[char_encode("7")] = 5.0
    text, _ = constrained_greedy(Prefers(scores), [5], ssn_format(SSN), vocab)
    assert text == " 777-77-7777"


@pytest.mark.parametrize("fmt", [ssn_format(SSN), phone_format(" (617) 555-0142"),
                                 card_format(" 4111 1111 1111 1111"), iban_format(" GB82 WEST 1234 5698 7654 32"),
                                 email_format(MAIL, names=MAIL_NAMES, domains=MAIL_DOMAINS),
                                 email_format(" jdoe42@x.com")], ids=lambda f: f.layout())
def test_constrained_decoding_of_an_untrained_model_gives_a_complete_value_of_the_format(fmt):
    model = tiny_model("llama", vocab_size=300, seed=3)
    vocab = TokenVocab.from_decode(bpe_decode, 300)
    text, complete = constrained_greedy(model, bpe_encode("The number is"), fmt, vocab)
    assert complete
    assert fmt.fits(text)


def test_many_secrets_give_the_single_results_and_records_hold_no_value(bpe_model):
    targets = [FormatTarget(tuple(bpe_encode(SSN_PROMPT)), SSN, ssn_format(SSN)),
               FormatTarget(tuple(bpe_encode(MAIL_PROMPT)), MAIL, email_format(MAIL, names=MAIL_NAMES)),
               FormatTarget(tuple(bpe_encode(MAIL_PROMPT)), " 555-01-4213", ssn_format(SSN))]
    many = format_attacks_many(bpe_model, targets, bpe_encode, bpe_decode, n_candidates=50)
    for t, res in zip(targets, many, strict=True):
        single = format_attacks(bpe_model, list(t.prompt_ids), t.secret_text, t.fmt, bpe_encode, bpe_decode,
                                n_candidates=50)
        assert res.to_record() == single.to_record()
        shown = repr(res) + repr(res.to_record()) + repr(res.to_rows()) + repr(t)
        for raw in (t.secret_text, t.secret_text.strip(), "555-01", "quintero"):
            assert raw not in shown
    rows = {r["metric"]: r["value"] for r in many[0].to_rows()}
    assert rows["constrained_fraction"] == 1.0
    assert rows["partial_completes"] == 1.0
    assert rows["neighbourhood_rank"] == 0.0
    assert all(isinstance(v, float) for v in rows.values())


def test_a_secret_outside_its_format_is_refused_without_showing_it(bpe_model):
    with pytest.raises(ValueError, match="not a valid value of format 'US_SSN'") as err:
        format_attacks(bpe_model, bpe_encode(SSN_PROMPT), " 555-01-42", ssn_format(SSN), bpe_encode, bpe_decode)
    assert "555-01" not in str(err.value)
    with pytest.raises(ValueError, match="prompt of at least one token"):
        format_attacks(bpe_model, [], SSN, ssn_format(SSN), bpe_encode, bpe_decode)


def test_exposure_arithmetic_counts_ties_against_the_secret():
    cands = [-10.0, -20.0, -30.0, -40.0, -5.0, -5.0, -50.0]
    top = exposure_from_scores(-1.0, cands, max_bits=30.0)
    assert (top.n_at_least_as_likely, top.exact_bits) == (0, pytest.approx(3.0))
    assert top.exposure_bits >= 3.0
    assert exposure_from_scores(-100.0, cands, max_bits=30.0).exposure_bits == 0.0
    tied = exposure_from_scores(-5.0, cands, max_bits=30.0)
    assert tied.n_at_least_as_likely == 2
    assert tied.exposure_bits == tied.exact_bits == pytest.approx(math.log2(8 / 3))
    flat = exposure_from_scores(-1.0, [-5.0] * 7, max_bits=30.0)  # no spread: nothing to fit
    assert (flat.exact_bits, flat.extrapolated_bits) == (pytest.approx(3.0), 30.0)
    assert exposure_from_scores(-5.0, [-5.0] * 7, max_bits=30.0).exposure_bits == 0.0
    with pytest.raises(ValueError, match="≥ 3 candidates"):
        exposure_from_scores(-1.0, [-2.0], max_bits=30.0)


def test_skew_normal_tail_and_fit_agree_with_scipy():
    stats = pytest.importorskip("scipy.stats")
    for shape in (-8.0, -1.0, 0.0, 2.0, 10.0):
        for x in (-9.0, -3.0, -0.5, 0.0, 1.5, 4.0):
            want = stats.skewnorm.logcdf(x, shape, loc=0.5, scale=2.0)
            got = skew_normal_log_cdf(x, 0.5, 2.0, shape)
            if math.isfinite(want):
                assert got == pytest.approx(want, rel=1e-5, abs=1e-9)
            else:  # scipy underflows to -inf deep in the tail; the log-space integral does not
                assert -1e7 < got < -700
    sample = stats.skewnorm.rvs(4.0, loc=30.0, scale=5.0, size=20000, random_state=0)
    loc, scale, shape = fit_skew_normal(sample)
    assert (loc, scale) == (pytest.approx(30.0, abs=0.3), pytest.approx(5.0, rel=0.05))
    assert shape == pytest.approx(4.0, rel=0.25)
