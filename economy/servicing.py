"""Servicing and payments (phase 7): legal risk, each live deal's waterfall, and the payments to
everyone the waterfall names.

First the courts: a distressed originator's pool may be pulled back into its estate when
bankruptcy remoteness fails (recharacterisation), which freezes its collections. A deal at its
legal final maturity sells the loans it has not collected (``AuctionHouse.sell_remainder``). Then
the trustee
runs the priority of payments of every deal that is not frozen, all deals at once
(``nplsim.market.waterfall``), and pays each step's amount to its recipient: taxes to the state,
fees to the trustee, servicer and guarantor, coupons, principal and the residual to the tranches'
holders, who book them.
"""

from __future__ import annotations

from dataclasses import fields

import numpy as np

from nplsim.agents.amc import AssetManagementCompany
from nplsim.agents.bank import StateBank
from nplsim.agents.investor import Investor
from nplsim.agents.spv import SpecialPurposeVehicle
from nplsim.agents.underwriter import Underwriter
from nplsim.economy.auction_house import AuctionHouse
from nplsim.economy.deal_desk import DealDesk
from nplsim.economy.world import EconomyWorld
from nplsim.market import pricing, waterfall
from nplsim.market.legal_risk import court_reach


class Trustee:
    """Services every live deal of the deal desk's register and routes its payments."""

    def __init__(
        self,
        world: EconomyWorld,
        rng: np.random.Generator,
        desk: DealDesk,
        banks: list[StateBank],
        amcs: list[AssetManagementCompany],
        investors: list[Investor],
        underwriter: Underwriter,
        auctions: AuctionHouse,
    ):
        self.world = world
        self.rng = rng  # the courts' draws
        self.desk = desk
        self.originators = {a.account: a for a in (*banks, *amcs)}
        self.holders = {i.account: i for i in investors}
        self.underwriter = underwriter
        self.auctions = auctions  # where a trust sells what it has not collected at maturity
        self.flows = dict.fromkeys(
            ("investor_losses", "enhancer_payouts", "recharacterisations", "remainder_sales"), 0.0
        )
        choice = world.scenario.securitisation.waterfall  # a name, or the steps written out
        self.priority = waterfall.priority(choice if isinstance(choice, str) else choice.lists())
        self.payment_keys = waterfall.payment_keys(*self.priority)

    def reset(self) -> None:
        """Zero the quarter's flows."""
        self.flows = dict.fromkeys(self.flows, 0.0)

    def service(self) -> None:
        """Legal risk; the sale of what deals at their legal final maturity have not collected;
        the trustee's report of each live deal's collections to investors; then the waterfall
        of every live deal that is not frozen."""
        live = self.desk.live()
        self.apply_legal_risk(live)
        active = [spv for spv in live if not spv.frozen]
        self.sell_remainders([spv for spv in active if self.at_maturity(spv)])
        self.report_collections(live)
        if active:
            self.run_waterfalls(active)
        for spv in live:
            spv.cash_reported = spv.cash

    def report_collections(self, live: list[SpecialPurposeVehicle]) -> None:
        """What each live deal collected since the last report (its cash beyond what was left
        then) goes into investors' track record of its originator."""
        for spv in live:
            collected = max(spv.cash - spv.cash_reported, 0.0)
            self.desk.investor_view.record_collections(spv.deal_id, collected)

    def run_waterfalls(self, active: list[SpecialPurposeVehicle]) -> None:
        """Run the priority of payments of the unfrozen live deals, all at once, and pay it."""
        world = self.world
        regime, spec = world.regime, world.scenario.securitisation
        rows = np.array([spv.terms.book_index for spv in active])
        book = _take(self.desk.book, rows)
        collections = np.array(
            [max(spv.cash - book.reserve[k], 0.0) for k, spv in enumerate(active)]
        )
        balance_total = sum(book.balance[t] for t in waterfall.TRANCHES)
        view = self.desk.investor_view
        path = np.array([view.expected_path(spv.deal_id) for spv in active]).reshape(-1, 2)
        scheduled = path[:, 0]
        guarantee_fee = (
            np.array([spv.terms.guarantee_fee_rate if spv.guarantor else 0.0 for spv in active])
            * book.balance["senior"]
            / 4
        )
        final = np.array([self.at_maturity(spv) for spv in active])
        book.expected_cumulative = path[:, 1]
        inputs = waterfall.PeriodInputs(
            collections=collections,
            taxes_due=np.array([self.tax_rate(spv) for spv in active])
            * spec.taxable_income_share
            * collections,
            fees_due={
                "trustee": spec.trustee_bp_per_year / 1e4 / 4 * balance_total,
                "servicer_base": spec.servicer_base_fee * collections,
                "servicer_incentive": spec.servicer_incentive_share
                * np.maximum(collections - scheduled, 0.0),
                "guarantee_fee": guarantee_fee,
            },
            disposal_costs=world.scenario.bank_workout_cost * collections,
            cost_cap=spec.disposal_cost_cap * collections,
            guarantee_available=np.array(
                [
                    spv.guarantor.available_for(spv.deal_id, regime.guarantee_enforceability)
                    if spv.guarantor
                    else 0.0
                    for spv in active
                ]
            ),  # fmt: skip
            final=final,
            trigger_ratio=spec.trigger_ratio,
        )
        before = {t: book.balance[t].copy() for t in waterfall.TRANCHES}
        payments = waterfall.run_waterfall(book, inputs, *self.priority)
        _put(self.desk.book, rows, book)
        for k, spv in enumerate(active):
            self.distribute(spv, k, payments, before, final[k])

    def at_maturity(self, spv: SpecialPurposeVehicle) -> bool:
        """Whether the deal ends this quarter: its legal final maturity, or nothing left to
        collect."""
        return self.world.quarter >= spv.final_quarter or spv.live_slots.size == 0

    def sell_remainders(self, maturing: list[SpecialPurposeVehicle]) -> None:
        """Where deals provide for it, each maturing trust sells the loans it has not collected
        in the NPL auction; the price is collected cash for the final waterfall."""
        if not self.world.scenario.securitisation.remainder_sale:
            return
        for spv in maturing:
            left = spv.live_slots
            if left.size == 0:
                continue
            price = self.auctions.sell_remainder(spv.name, spv.account, left)
            self.flows["remainder_sales"] += price
            if price > 0:
                self.world.log_event("remainder_sold", spv.originator.name, spv.name, price)

    def tax_rate(self, spv: SpecialPurposeVehicle) -> float:
        """Tax on a vehicle's taxable income under its legal form (``pricing.spv_tax_rate``)."""
        regime = self.world.regime
        return pricing.spv_tax_rate(regime, spv.terms.spv_form)

    def distribute(
        self,
        spv: SpecialPurposeVehicle,
        k: int,
        payments: waterfall.PeriodPayments,
        before: dict[str, np.ndarray],
        final: bool,
    ) -> None:
        """Move one deal's waterfall payments through the ledger to whoever the priority of
        payments names, step by step; holders of a tranche receive its interest, and its principal
        and residual, as one payment each."""
        paid = payments.paid
        guarantor = spv.guarantor
        claim = float(payments.guarantee_drawn[k])
        if claim > 0:
            guarantor.pay_claim(spv.deal_id, spv.account, claim)
            self.flows["enhancer_payouts"] += claim
        paid_to_holders = {t: {"interest": 0.0, "principal": 0.0} for t in waterfall.TRANCHES}
        for key in self.payment_keys:  # in the order of the priority of payments
            amount = float(paid[key][k])
            role = waterfall.payee(key)
            if role == "holders":
                kind = "interest" if key[0] == "interest" else "principal"
                paid_to_holders[key[1]][kind] += amount
            elif role:
                self._pay_fee(spv, key, role, amount)
        book, row = self.desk.book, spv.terms.book_index
        for tranche in waterfall.TRANCHES:
            spv.record_tranche_cash(tranche, float(payments.tranche_cash(tranche)[k]))
            self._pay(spv, tranche, paid_to_holders[tranche]["interest"], principal=False)
            self._pay(spv, tranche, paid_to_holders[tranche]["principal"], principal=True)
            written_off = float(payments.principal_written_off[tranche][k])
            repaid = before[tranche][k] - book.balance[tranche][row] - written_off
            self._reduce(spv, tranche, repaid, loss=False)
            self._reduce(spv, tranche, written_off, loss=True)
            self.flows["investor_losses"] += written_off
        if guarantor is not None:
            guarantor.update_exposure(spv.deal_id, book.balance["senior"][row])
        if final:
            self._mature(spv)

    def _pay_fee(
        self, spv: SpecialPurposeVehicle, key: tuple[str, str], role: str, amount: float
    ) -> None:
        """Pay a tax, fee or capped cost to the ``role`` the priority of payments names."""
        if amount <= 0:
            return
        ledger, outside = self.world.ledger, self.world.ledger.outside
        if role == "servicer":
            ledger.transfer(spv.account, spv.servicer.account, amount, f"spv_fee_{key[1]}")
            spv.servicer.earn_servicing_fee(amount)
        elif role == "guarantor":
            guarantor = spv.guarantor
            payee = outside["government"] if guarantor.state_backed else guarantor.account
            ledger.transfer(spv.account, payee, amount, "guarantee_fee")
            guarantor.fees_earned += amount
        else:
            kind = f"spv_{key[0]}_{key[1]}".rstrip("_")
            ledger.transfer(spv.account, outside[role], amount, kind)

    def _pay(
        self, spv: SpecialPurposeVehicle, tranche: str, amount: float, principal: bool
    ) -> None:
        """Pay a tranche's holders; originators book what their retained slices receive."""
        for account, share in spv.pay_holders(tranche, amount, principal):
            originator = self.originators.get(account)
            if originator is not None:
                originator.receive_tranche_payment(spv.deal_id, tranche, share, principal)

    def _reduce(self, spv: SpecialPurposeVehicle, tranche: str, amount: float, loss: bool) -> None:
        """Cut holders' notional (repaid, or written off when ``loss``) and tell each holder."""
        for account, cut in spv.reduce_holdings(tranche, amount):
            originator = self.originators.get(account)
            if originator is not None:
                originator.reduce_retained(spv.deal_id, tranche, cut, loss)
            else:
                self.holders.get(account, self.underwriter).reduce(spv.deal_id, tranche, cut, loss)

    def _mature(self, spv: SpecialPurposeVehicle) -> None:
        """Legal final maturity: loans still in the pool (unsold) are written off and the deal
        ends."""
        world = self.world
        loans, totals = world.loans, world.holdings
        left = spv.live_slots
        face = float(loans.principal[left].sum())
        carrying = float(loans.carrying[left].sum())
        loans.write_off(left)
        totals.npl[spv.account] -= face
        totals.npl_carrying[spv.account] -= carrying
        spv.close()
        record, view = spv.terms.record, self.desk.investor_view
        view.complete_record(spv.deal_id)
        record["realised_collections"] = view.collected(spv.deal_id)
        record["realised_to_expected"] = view.realised_to_expected(spv.deal_id)
        if spv.guarantor is not None:
            spv.guarantor.update_exposure(spv.deal_id, 0.0)
        world.log_event("deal_matured", spv.originator.name, spv.name, spv.cash)

    # ------------------------------------------------------------------ the courts
    def apply_legal_risk(self, live: list[SpecialPurposeVehicle]) -> None:
        """Recharacterisation: a distressed originator's pool is pulled back into its estate with
        the probability that a court reaches it (1 − bankruptcy remoteness, less for a company
        vehicle); collections freeze, and when the freeze ends the originator's creditors take a
        share of them that investor protection softens. Investors watch every originator's
        capital and distress as they go."""
        world = self.world
        regime, spec = world.regime, world.scenario.securitisation
        self.desk.investor_view.observe_originators()
        draws = self.rng.random(len(live))
        for spv, draw in zip(live, draws, strict=True):
            if spv.frozen_until == world.quarter:
                self.release_freeze(spv)
            if not spv.test_distress(spv.originator.distressed):
                continue
            if draw < court_reach(regime.bankruptcy_remoteness, spv.terms.spv_form):
                spv.freeze(world.quarter + spec.freeze_q)
                self.flows["recharacterisations"] += 1
                world.log_event(
                    "recharacterisation", spv.originator.name, f"{spv.name} frozen", spv.cash
                )

    def release_freeze(self, spv: SpecialPurposeVehicle) -> None:
        """End of a freeze: the originator's estate keeps a share of the frozen collections."""
        world = self.world
        frozen = max(spv.cash - self.desk.book.reserve[spv.terms.book_index], 0.0)
        haircut = (
            frozen
            * world.scenario.securitisation.recharacterisation_haircut
            * (1.0 - world.regime.investor_protection)
        )
        world.ledger.transfer(spv.account, spv.originator.account, haircut, "recharacterisation")
        # the frozen collections were reported as they came; the estate's share of them is a
        # legal loss, not a shortfall of this quarter's collections
        spv.cash_reported -= haircut
        spv.originator.recover_from_recharacterisation(haircut)
        self.flows["investor_losses"] += haircut
        world.log_event("freeze_released", spv.originator.name, spv.name, haircut)


def _take(book: waterfall.DealBook, rows: np.ndarray) -> waterfall.DealBook:
    """The deals at ``rows`` as a book of their own (copies)."""
    return waterfall.DealBook(
        **{
            f.name: (
                {k: v[rows].copy() for k, v in getattr(book, f.name).items()}
                if isinstance(getattr(book, f.name), dict)
                else getattr(book, f.name)[rows].copy()
            )
            for f in fields(book)
        }
    )


def _put(book: waterfall.DealBook, rows: np.ndarray, part: waterfall.DealBook) -> None:
    """Write a sub-book taken with ``_take`` back into ``book``."""
    for f in fields(book):
        target, source = getattr(book, f.name), getattr(part, f.name)
        if isinstance(target, dict):
            for key in target:
                target[key][rows] = source[key]
        else:
            target[rows] = source
