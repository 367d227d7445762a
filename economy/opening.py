"""Quarter 0: a seasoned loan book and balance sheets that balance from the start.

Each bank's share of the book is its share of the scenario's loans. Loans are seasoned (each has
already amortised to the share of its term still to run), a share of them is non-performing in
proportion to its probability of default, and deposits close every bank's balance sheet.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from nplsim.agents.amc import AssetManagementCompany
from nplsim.agents.bank import StateBank
from nplsim.agents.enhancer import CreditEnhancer
from nplsim.agents.investor import Investor
from nplsim.agents.underwriter import Underwriter
from nplsim.economy.world import EconomyWorld
from nplsim.market.credit import draw_segments, workout_quality
from nplsim.market.loans import SEGMENTS

# Log-s.d. of loan sizes in the opening book, before they are scaled to each bank's book
# (assumption: loan sizes are roughly lognormal, and a wide spread keeps packages uneven).
LOAN_SIZE_LOG_SD = 1.0


@dataclass(frozen=True)
class OpeningBook:
    """What the opening book fixes for the rest of the run.

    Attributes:
        slot_size: each slot's original loan size (re-lent when it frees up, grown with lending).
        pd_multiplier_by_account: default-probability multiplier of the loans each account
            originates (1 for accounts that do not lend).
    """

    slot_size: np.ndarray
    pd_multiplier_by_account: np.ndarray


def seed_loan_book(
    world: EconomyWorld, rng: np.random.Generator, banks: list[StateBank]
) -> OpeningBook:
    """Fill every slot of the loan book with a seasoned loan of one of the banks."""
    config, loans, ledger = world.scenario, world.loans, world.ledger
    books = np.array([b.loans_cny_bn for b in config.banks])
    counts = np.floor(books / books.sum() * loans.n).astype(int)
    counts[-1] += loans.n - counts.sum()
    owner_index = np.repeat(np.arange(len(banks)), counts)
    bank_accounts = np.array([bank.account for bank in banks])
    accounts = bank_accounts[owner_index]
    pd_multiplier = np.ones(ledger.n_accounts)
    for bank in banks:
        pd_multiplier[bank.account] = bank.pd_multiplier

    # A seasoned book: each loan has amortised to the share of its term still to run, so the
    # slot's original size (re-lent when it frees up) is the outstanding over that share.
    segment = draw_segments(config, rng.random(loans.n))
    maturity = np.array([config.segments[s].maturity_q for s in SEGMENTS])[segment]
    remaining_share = np.ceil(rng.random(loans.n) * maturity) / maturity
    principal = rng.lognormal(0.0, LOAN_SIZE_LOG_SD, loans.n) * remaining_share
    principal *= books[owner_index] / np.bincount(owner_index, weights=principal)[owner_index]
    slot_size = principal / remaining_share
    loans.originate(
        slice(None),
        accounts,
        segment,
        principal,
        pd_multiplier,
        config.macro.benchmark_rate,
        rng.random(loans.n),
        remaining_share,
    )
    # Initial NPLs: the chance a loan is bad is proportional to its PD, scaled so that the
    # expected NPL share of the book equals the scenario's starting NPL ratio.
    segment_pd = np.array([config.segments[s].pd_annual for s in SEGMENTS])[segment]
    weight = segment_pd * pd_multiplier[accounts]
    # (a book whose slots are too small to hold any principal weighs its loans equally)
    mean_weight = np.average(weight, weights=principal) if principal.sum() > 0 else weight.mean()
    p_bad = np.clip(config.initial_npl_ratio * weight / mean_weight, 0, 1)
    bad = rng.random(loans.n) < p_bad
    loans.quality[:] = workout_quality(
        config.borrower_quality_dispersion, rng.standard_normal(loans.n)
    )
    loans.mark_npl(
        np.flatnonzero(bad), -rng.integers(0, config.initial_npl_max_age_q + 1, bad.sum())
    )
    world.holdings.recount(loans, ledger.n_accounts)
    return OpeningBook(slot_size, pd_multiplier)


def open_balance_sheets(
    world: EconomyWorld,
    banks: list[StateBank],
    amcs: list[AssetManagementCompany],
    investors: list[Investor],
    enhancers: list[CreditEnhancer],
    underwriter: Underwriter,
) -> None:
    """Every agent's opening balance sheet, its capital and funding paid in through the ledger."""
    config = world.scenario
    for bank in banks:
        bank.open_books()
    for amc in amcs:
        amc.open_books()
    ledger, outside = world.ledger, world.ledger.outside
    for investor in investors:
        ledger.transfer(
            outside["capital_market"], investor.account, investor.spec.capacity_cny_bn,
            "opening_investor_cash",
        )  # fmt: skip
    for enhancer, spec in zip(enhancers, config.enhancers, strict=True):
        ledger.transfer(outside["owners"], enhancer.account, spec.capital_cny_bn, "opening_equity")
    ledger.transfer(
        outside["owners"], underwriter.account,
        config.securitisation.underwriter_capital_cny_bn, "opening_equity",
    )  # fmt: skip
