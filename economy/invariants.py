"""Stock-flow and accounting invariants, checked on demand (the tests check them every quarter).

Money is conserved in the ledger; every balance sheet balances; no agent holds negative cash,
bonds, provisions, deposits or funding; every tranche's holders own exactly its balance; every
loan has exactly one known holder; the per-account aggregates and indexes of the loan book match a
recount.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from nplsim.agents.spv import LIVE
from nplsim.market.loans import Status

if TYPE_CHECKING:
    from nplsim.economy.model import NPLMarketModel


def violations(model: NPLMarketModel, tolerance: float = 1e-7) -> list[str]:
    """Every invariant that does not hold; an empty list means all hold."""
    return [
        *_ledger_and_balance_sheets(model, tolerance),
        *_deals(model),
        *model.power.violations(),
        *_loan_book(model),
    ]


def _ledger_and_balance_sheets(model: NPLMarketModel, tolerance: float) -> list[str]:
    problems = []
    ledger, totals = model.ledger, model.world.holdings
    scale = max(ledger.gross(), 1.0)
    if abs(ledger.total()) > tolerance * scale:
        problems.append(f"ledger does not conserve money: sum {ledger.total():.6g}")
    for agent in (*model.banks, *model.amcs, *model.npl_buyers):
        size = max(abs(agent.equity), agent.cash, 1.0) + totals.npl[agent.account]
        if abs(agent.balance_gap) > 1e-6 * max(size, getattr(agent, "total_assets", 0.0)):
            problems.append(f"{agent.name}: balance sheet gap {agent.balance_gap:.6g}")
        if agent.cash < -1e-9 * max(size, 1.0):
            problems.append(f"{agent.name}: negative cash {agent.cash:.6g}")
    for bank in model.banks:
        for name in ("gov_bonds", "amc_bonds", "provisions", "deposits", "interbank"):
            if getattr(bank, name) < -1e-9 * max(bank.total_assets, 1.0):
                problems.append(f"{bank.name}: negative {name} {getattr(bank, name):.6g}")
    for amc in (*model.amcs, *model.npl_buyers):
        if amc.funding_debt < -1e-9:
            problems.append(f"{amc.name}: negative funding debt")
    others = (*model.investors, *model.enhancers, model.underwriter)
    for agent in (*model.desk.vehicles, *others):
        if agent.cash < -1e-9:
            problems.append(f"{agent.name}: negative cash {agent.cash:.6g}")
    return problems


def _deals(model: NPLMarketModel) -> list[str]:
    problems = []
    book = model.desk.book
    for tranche, balance in book.balance.items():
        if (balance < -1e-12).any():
            problems.append(f"negative {tranche} tranche balance")
    for spv in model.desk.vehicles:
        if spv.state == LIVE and not spv.frozen:
            gap = spv.cash - book.reserve[spv.terms.book_index]
            if abs(gap) > 1e-9 * max(spv.cash, 1.0):
                problems.append(f"{spv.name}: cash {spv.cash:.6g} left beside its reserve")
        for tranche, owners in spv.holders.items():
            held = sum(owners.values())
            if spv.state == LIVE and abs(
                held - book.balance[tranche][spv.terms.book_index]
            ) > 1e-7 * max(held, 1.0):
                problems.append(f"{spv.name}: {tranche} holdings {held:.6g} != balance")
    return problems


def _loan_book(model: NPLMarketModel) -> list[str]:
    problems = []
    loans, n = model.loans, model.ledger.n_accounts
    holders = {
        a.account for a in (*model.banks, *model.amcs, *model.npl_buyers, *model.desk.vehicles)
    }
    unknown = np.setdiff1d(np.unique(loans.holder), list(holders))
    if unknown.size:
        problems.append(f"loans held by unknown accounts {unknown.tolist()}")
    if (loans.principal < 0).any() or (loans.carrying < -1e-12).any():
        problems.append("negative loan principal or carrying value")
    live = loans.status <= Status.NPL
    if (loans.principal[~live] != 0).any():
        problems.append("closed loan slots still carry principal")
    claimed = loans.written_off_claim > 0
    if (claimed & (loans.status != Status.NPL)).any():
        problems.append("a written-off claim on a slot that is not an NPL")
    banks = [bank.account for bank in model.banks]
    if (claimed & ((loans.principal != 0) | ~np.isin(loans.holder, banks))).any():
        problems.append("a written-off claim still on the books or not held by a bank")
    problems.extend(
        f"stale per-holder totals: {key}" for key in model.world.holdings.stale(loans, n)
    )
    if not np.array_equal(loans.free_slots(), np.flatnonzero(loans.status >= Status.RESOLVED)):
        problems.append("stale index of free slots")
    npl = np.flatnonzero(loans.status == Status.NPL)
    if not np.array_equal(loans.npl_index(), npl):
        problems.append("stale index of non-performing loans")
    for account in np.unique(loans.holder[npl]).tolist():
        if not np.array_equal(loans.npls_of(account), npl[loans.holder[npl] == account]):
            problems.append(f"stale non-performing loans of account {account}")
    moved = (loans.status == Status.PERFORMING) & (loans.holder != loans.originator)
    if moved.any() and not loans.performing_sold:
        problems.append("performing loans left their originator unrecorded")
    return problems
