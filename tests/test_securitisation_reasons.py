"""Securitisation for the right reasons, over paired seeds: better disclosure grows the market,
legal risk is priced from the economy's own distress, investors collect what they priced, and the
study's proposals move more than the spread.

Every claim is a statistic over >= 10 paired seeds (common random numbers: the same seed gives
both arms the same macro shocks and defaults) with a 95% t-interval of the paired differences.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import run_model
from scipy import stats

from nplsim.economy.investor_view import InvestorView
from nplsim.experiments.levers import LEVERS, lever_overrides

SEEDS = range(1, 11)
KNOWN_MISS_AFTER_BANKS = pytest.mark.xfail(
    strict=False,
    reason="known miss since the bank block's recalibration (calm 2016-23 credit factor, banks "
    "managing to their LCR target): restart_2016 makes few deals, so more disclosure no longer "
    "raises issuance with a CI above 0 (0.3 -> 0.6: -2.2..+3.3 bn, 0.6 -> 0.9: -3.5..+5.2 bn "
    "over 20 seeds), and one seed of ten issues nothing at full disclosure in 16 quarters; see "
    "docs/securitisation.md",
)


def ci(diff: np.ndarray) -> tuple[float, float]:
    """95% t-interval of the mean of paired differences."""
    half = stats.t.ppf(0.975, diff.size - 1) * diff.std(ddof=1) / np.sqrt(diff.size)
    return float(diff.mean() - half), float(diff.mean() + half)


def issued(scenario: str, seeds, **overrides) -> np.ndarray:
    return np.array(
        [run_model(scenario, s, **overrides).model_frame()["abs_issued"].sum() for s in seeds]
    )


# disclosure grows the market -------------------------------------------------------------------
@KNOWN_MISS_AFTER_BANKS
@pytest.mark.slow
def test_more_disclosure_issues_more():
    """Disclosure 0.3 -> 0.6 -> 0.9 narrows the lemons discount and the rating agencies' stress,
    so more is issued at each step (20 paired seeds, 40 quarters)."""
    seeds = range(1, 21)
    volumes = [issued("restart_2016", seeds, disclosure_level=d) for d in (0.3, 0.6, 0.9)]
    for low, high in zip(volumes, volumes[1:], strict=False):
        assert ci(high - low)[0] > 0.0, (low.mean(), high.mean(), ci(high - low))


@KNOWN_MISS_AFTER_BANKS
def test_full_disclosure_yields_deals():
    """With nothing private left there is no lemons discount, and banks still securitise for
    capital relief, funding and the NPL-ratio target."""
    volumes = issued("restart_2016", SEEDS, disclosure_level=1.0, quarters=16)
    assert (volumes > 0).all(), volumes


# facts: claim-pursuit: a bought claim stays enforceable while its holder keeps demanding payment;
# ten years of NPL age is an assumption (facts: recovery-timing shows recoveries after five years)
CLAIMS_PURSUED = {"claim_life_q": 40}


def test_claims_pursued_past_the_write_off_make_full_disclosure_deals():
    """With ``claim_life_q`` set (not yet the default: see docs/securitisation.md) a trust keeps
    pursuing the claims it bought past the age at which the bank would write them off, so the
    loans are worth more to investors than to the bank and it securitises with nothing private
    left: every seed of ten issues within 16 quarters, and far more than with the claim ending at
    the banks' write-off age (measured: 37.5 against 1.8 CNY bn)."""
    pursued = issued("restart_2016", SEEDS, disclosure_level=1.0, quarters=16, **CLAIMS_PURSUED)
    ended = issued("restart_2016", SEEDS, disclosure_level=1.0, quarters=16)
    assert (pursued > 0).all(), pursued
    assert ci(pursued - ended)[0] > 0.0, (pursued, ended)


@pytest.mark.slow
def test_with_claims_pursued_more_disclosure_issues_more():
    """With ``claim_life_q`` set, deals are made for gains from trade, and disclosure 0.3 -> 0.6
    -> 0.9 narrows the lemons discount on them: more is issued at each step (20 paired seeds, 40
    quarters; measured +12.9 [+9.6, +16.2] and +13.9 [+10.5, +17.4] CNY bn)."""
    seeds = range(1, 21)
    volumes = [
        issued("restart_2016", seeds, disclosure_level=d, **CLAIMS_PURSUED) for d in (0.3, 0.6, 0.9)
    ]
    for low, high in zip(volumes, volumes[1:], strict=False):
        assert ci(high - low)[0] > 0.0, (low.mean(), high.mean(), ci(high - low))


# facts: bank-roe: the commercial banks' mean return on equity over 2016-23
COST_OF_EQUITY_2016_23 = 0.1075


def test_priced_equity_makes_full_disclosure_deals():
    """With the banks' equity priced (``bank_cost_of_equity``, not yet the default: see
    docs/securitisation.md) the capital an NPL ties up while it stays on the books is a reason
    to dispose of it that needs no private information: at full disclosure every seed issues,
    and more than the same seeds with equity unpriced (measured: +8.1 [+4.2, +11.9] CNY bn over
    16 quarters)."""
    priced = issued("restart_2016", SEEDS, disclosure_level=1.0, quarters=16,
                    bank_cost_of_equity=COST_OF_EQUITY_2016_23)  # fmt: skip
    unpriced = issued("restart_2016", SEEDS, disclosure_level=1.0, quarters=16)
    assert (priced > 0).all(), priced
    assert ci(priced - unpriced)[0] > 0.0, (priced, unpriced)


@pytest.mark.slow
def test_mature_market_issues_more_than_restart_2016():
    diff = issued("mature_market", SEEDS, quarters=24) - issued("restart_2016", SEEDS, quarters=24)
    assert ci(diff)[0] > 0.0, ci(diff)


# legal risk from the economy's own state -------------------------------------------------------
def legal(remoteness: float) -> tuple[np.ndarray, np.ndarray]:
    """Per seed: deals' mean senior legal premium and mean senior spread (bp), in an economy whose
    capital minimum leaves banks near distress."""
    premium, spread = [], []
    for seed in SEEDS:
        deals = run_model(
            "restart_2016", seed, bankruptcy_remoteness=remoteness, car_min=0.14, quarters=16
        ).deal_frame()
        premium.append(deals["senior_legal_premium_bp"].mean())
        spread.append(deals["senior_spread_bp"].mean())
    return np.array(premium), np.array(spread)


@pytest.mark.slow
def test_remoteness_lowers_the_spread_through_the_estimated_recharacterisation_loss(monkeypatch):
    weak_premium, weak_spread = legal(0.5)
    strong_premium, strong_spread = legal(0.99)
    assert ci(strong_premium - weak_premium)[1] < 0.0
    assert ci(strong_spread - weak_spread)[1] < 0.0
    # switch the channel off: investors see no chance of distress
    monkeypatch.setattr(InvestorView, "distress_probability", lambda self, o, h: 0.0)
    weak_premium, weak_spread = legal(0.5)
    strong_premium, strong_spread = legal(0.99)
    assert np.nanmax(np.abs(np.r_[weak_premium, strong_premium])) == 0.0
    low, high = ci(strong_spread - weak_spread)
    assert low < 0.0 < high, (low, high)


# investors collect what they priced ------------------------------------------------------------
@pytest.mark.slow
def test_investors_realise_what_they_expected_on_closed_deals():
    """Collection-weighted realised / expected collections (with the originator's believed bias
    priced in) of the deals that ended, per seed, at 100,000 loan slots; the mean over seeds is
    within 0.9-1.1 (rational, learning investors are right on average). Deals that collected
    nothing count with what they were expected to collect (was: a ratio of 0 / 0 dropped them
    from the denominator, which made the mean read 2.5 instead of 1.0 at 20,000 slots)."""
    ratios = []
    for seed in SEEDS:
        deals = run_model("restart_2016", seed, n_loans=100_000).deal_frame()
        ended = deals[deals["realised_to_expected"].notna()]
        ratios.append(ended["realised_collections"].sum() / ended["expected_collections"].sum())
    assert 0.9 <= np.mean(ratios) <= 1.1, ratios


# the three proposals ---------------------------------------------------------------------------
def _arm_outcomes(arm: str) -> dict[str, np.ndarray]:
    overrides = {} if arm == "base" else lever_overrides()[arm]
    out: dict[str, list[float]] = {"abs_issued": [], "npl_exit_age_q": [], "car": []}
    for seed in SEEDS:
        frame = run_model("restart_2016", seed, quarters=24, **overrides).model_frame().iloc[1:]
        out["abs_issued"].append(frame["abs_issued"].sum())
        out["npl_exit_age_q"].append(np.nanmean(frame["npl_exit_age_q"]))
        out["car"].append(frame["car"].mean())
    return {k: np.array(v) for k, v in out.items()}


SPV_RULES_GAP = pytest.mark.xfail(
    strict=True,
    reason="measured: the SPV rules alone (remoteness 0.8 -> 0.97, no VAT) move neither volumes,"
    " disposal speed nor capital, with CIs including 0, because investors put the chance of an"
    " originator's distress near 0 in restart_2016 (docs/securitisation.md)",
)


@pytest.mark.slow
@pytest.mark.parametrize(
    "arm", [pytest.param(a, marks=SPV_RULES_GAP) if a == "spv_rules" else a for a in LEVERS]
)
def test_each_proposal_changes_more_than_the_spread(arm):
    base, lever = _arm_outcomes("base"), _arm_outcomes(arm)
    moved = {k: ci(lever[k] - base[k]) for k in base}
    assert any(low > 0.0 or high < 0.0 for low, high in moved.values()), moved
