"""A bank's treasury: its liquidity as the regulator measures it, and how it manages it.

Reserves at the central bank (required and excess), government and policy-bank bonds (high-quality
liquid assets, the latter with a haircut), interbank placements, and other securities that are not
liquid; deposits in two classes with their LCR run-off rates, interbank funding rolled over at
the market rate, and the central bank's standing lending facility (SLF, overnight, at a penalty)
and medium-term lending facility (MLF, one year). Each quarter the treasury keeps the required and
excess reserves, the HQLA that its LCR and liquidity-ratio targets ask for (having repaid the
central bank once the minima are met) and its placements, and invests what is left in other
securities; a shortfall is met from placements, by selling other
securities (only in calm markets), by selling bonds down to the regulatory minima (unless they
only sell at a fire-sale discount), then from the central bank. (facts: liquidity-rules,
bank-liquidity-2023; the management rule is an assumption.)
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from nplsim.market.liquidity import coverage, net_cash_outflows

if TYPE_CHECKING:
    from nplsim.market.banking_spec import LiquiditySpec

DAYS_30_PER_QUARTER = 1 / 3  # a 30-day window is a third of a quarter
TARGET_TOLERANCE = 0.05  # assumption: HQLA within 5% of the treasury's target count as on target
MLF_COLLATERAL_HAIRCUT = 0.2  # assumption: the central bank lends 80% of collateral pledged
# assumption: a fifth of performing loans qualify as MLF collateral (the PBOC has taken credit
# assets as collateral since 2014; not in docs/facts.md)
LOAN_COLLATERAL_SHARE = 0.2


class Treasury:
    """Mixin of ``StateBank``: liquidity ratios and their management.

    Expects the bank's ``world``, ``spec``, ``account``, ``flows``, ``_book_pnl``, the balance
    sheet items named in the module docstring and ``gross_loans``.
    """

    @property
    def liquidity_spec(self) -> LiquiditySpec:
        """The scenario's funding structure and liquidity targets."""
        return self.world.scenario.liquidity

    # ------------------------------------------------------------------ balance sheet items
    @property
    def deposits(self) -> float:
        """Deposits of both classes (CNY bn)."""
        return self.deposits_stable + self.deposits_other

    @property
    def required_reserves(self) -> float:
        """Reserves the required reserve ratio asks for (CNY bn)."""
        return self.world.scenario.reserve_ratio * self.deposits

    @property
    def excess_reserves(self) -> float:
        """Reserves above the requirement (CNY bn; 0 when short)."""
        return max(self.cash - self.required_reserves, 0.0)

    @property
    def bonds(self) -> float:
        """Government and policy-bank bonds at book value (CNY bn)."""
        return self.gov_bonds + self.policy_bonds

    @property
    def central_bank_borrowing(self) -> float:
        """Standing and medium-term facility borrowing outstanding (CNY bn)."""
        return self.slf + self.mlf

    @property
    def liquid_assets(self) -> float:
        """Reserves plus government and policy-bank bonds at book value (CNY bn)."""
        return self.cash + self.bonds

    # ------------------------------------------------------------------ LCR
    @property
    def hqla(self) -> float:
        """High-quality liquid assets after haircuts (CNY bn): excess reserves, government bonds
        not pledged to the standing facility, policy-bank bonds less their haircut."""
        unpledged = max(self.gov_bonds - self.slf, 0.0)
        haircut = self.world.prudential.policy_bond_haircut
        return self.excess_reserves + unpledged + (1.0 - haircut) * self.policy_bonds

    @property
    def lcr_outflows(self) -> float:
        """30-day stressed outflows: deposit run-off by class, interbank and standing-facility
        funding in full (CNY bn)."""
        rules = self.world.prudential
        return (
            rules.runoff_stable_deposits * self.deposits_stable
            + rules.runoff_less_stable_deposits * self.deposits_other
            + rules.runoff_wholesale * self.interbank
            + self.slf
        )

    @property
    def lcr_inflows(self) -> float:
        """30-day inflows: placements maturing and the counted share of loan repayments."""
        rules = self.world.prudential
        return self.placements + rules.loan_inflow_rate * self.loans_due_30d

    @property
    def loans_due_30d(self) -> float:
        """Performing principal due within 30 days: a third of last quarter's repayments."""
        return self.principal_due_q * DAYS_30_PER_QUARTER

    @property
    def net_outflows(self) -> float:
        """Net cash outflows of the LCR (CNY bn)."""
        cap = self.world.prudential.inflow_cap
        return net_cash_outflows(self.lcr_outflows, self.lcr_inflows, cap)

    @property
    def lcr(self) -> float:
        """Liquidity coverage ratio: HQLA / 30-day net cash outflows."""
        return coverage(self.hqla, self.net_outflows)

    @property
    def lcr_headroom(self) -> float:
        """HQLA above what the LCR minimum asks (CNY bn; negative when short)."""
        return self.hqla - self.world.prudential.lcr_min * self.net_outflows

    # ------------------------------------------------------------------ liquidity ratio
    @property
    def current_assets(self) -> float:
        """Assets convertible to cash within a month: excess reserves, unpledged bonds,
        placements and loan repayments due (CNY bn)."""
        unpledged = max(self.gov_bonds - self.slf, 0.0) + self.policy_bonds
        return self.excess_reserves + unpledged + self.placements + self.loans_due_30d

    @property
    def current_liabilities(self) -> float:
        """Liabilities due within a month: demand deposits, time deposits maturing, interbank
        and standing-facility funding (CNY bn)."""
        demand = self.world.scenario.demand_deposit_share
        term_months = 3 * self.liquidity_spec.time_deposit_term_q
        time_due = (1.0 - demand) * self.deposits / term_months
        return demand * self.deposits + time_due + self.interbank + self.slf

    @property
    def liquidity_ratio(self) -> float:
        """Liquidity ratio: current assets / current liabilities (floor 25%, facts:
        liquidity-rules)."""
        return coverage(self.current_assets, self.current_liabilities)

    @property
    def loan_to_deposit(self) -> float:
        """Gross loans / deposits."""
        return coverage(self.gross_loans, self.deposits)

    @property
    def liquidity_short(self) -> bool:
        """Whether the bank relies on the central bank or holds less HQLA than its own targets
        ask (within ``TARGET_TOLERANCE``)."""
        if self.central_bank_borrowing > 0:
            return True
        return self.bonds < (1.0 - TARGET_TOLERANCE) * self.bonds_needed()

    # ------------------------------------------------------------------ funding cost
    @property
    def marginal_funding_cost(self) -> float:
        """Annual rate the bank pays on the next yuan it must raise (decimal): the interbank
        rate while lenders roll its funding and it needs no central-bank money, else the
        standing facility's rate."""
        funding = self.world.funding
        if self.slf > 0 or funding.rollover < 1.0:
            return funding.slf_rate
        return funding.interbank_rate

    def funding_rates(self) -> dict[str, float]:
        """Annual rate on each interest-bearing liability this quarter."""
        funding, rates = self.world.funding, self.liquidity_spec
        return {
            "deposits": self.world.scenario.macro.deposit_rate,
            "interbank": funding.interbank_rate,
            "slf": funding.slf_rate,
            "mlf": funding.mlf_rate,
            "sub_debt": rates.sub_debt_rate,
        }

    def funding_balances(self) -> dict[str, float]:
        """Each interest-bearing liability outstanding (CNY bn)."""
        return {
            "deposits": self.deposits,
            "interbank": self.interbank,
            "slf": self.slf,
            "mlf": self.mlf,
            "sub_debt": self.sub_debt,
        }

    @property
    def funding_cost(self) -> float:
        """Average annual rate on interest-bearing liabilities (decimal)."""
        balances, rates = self.funding_balances(), self.funding_rates()
        total = sum(balances.values())
        return coverage(sum(balances[k] * rates[k] for k in balances), total)

    # ------------------------------------------------------------------ targets
    def liquidity_targets(self, minima: bool = False) -> tuple[float | None, float]:
        """The LCR (None where no LCR is in force) and liquidity ratio the treasury keeps: the
        regulatory minima plus its buffers, or the minima alone."""
        rules, spec = self.world.prudential, self.liquidity_spec
        lcr = None
        if rules.lcr_min > 0:
            lcr = rules.lcr_min + (0.0 if minima else spec.lcr_buffer)
        ratio = rules.liquidity_ratio_min + (0.0 if minima else spec.liquidity_ratio_buffer)
        return lcr, ratio

    def bonds_needed(self, minima: bool = False, placements: float | None = None) -> float:
        """Bonds (at book, in the bank's mix) that meet the LCR and liquidity-ratio targets (or
        minima) with reserves at their target, ``placements`` (default: as they are) and the
        rest of the balance sheet as it is, plus the bonds pledged to the standing facility
        (CNY bn)."""
        lcr_target, ratio_target = self.liquidity_targets(minima)
        placed = self.placements if placements is None else placements
        excess = self.liquidity_spec.excess_reserve_share * self.deposits
        need = ratio_target * self.current_liabilities - (excess + placed + self.loans_due_30d)
        if lcr_target is not None:
            rules = self.world.prudential
            inflows = placed + rules.loan_inflow_rate * self.loans_due_30d
            outflows = net_cash_outflows(self.lcr_outflows, inflows, rules.inflow_cap)
            need = max(need, (lcr_target * outflows - excess) / self._hqla_per_bond())
        return max(need, 0.0) + min(self.slf, self.gov_bonds)

    def _bond_mix(self) -> float:
        """Share of government bonds in the bank's bond holdings (its opening mix)."""
        total = self.spec.bond_share + self.spec.policy_bond_share
        return self.spec.bond_share / total if total > 0 else 1.0

    def _hqla_per_bond(self) -> float:
        mix = self._bond_mix()
        return mix + (1.0 - mix) * (1.0 - self.world.prudential.policy_bond_haircut)

    # ------------------------------------------------------------------ the quarter
    def manage_liquidity(self) -> None:
        """Roll funding and placements, then use the cash above the reserve target: first for
        the HQLA bonds the regulatory minima ask, then to repay the medium-term facility, then
        for the HQLA its own targets ask, then for placements, the rest for other securities
        (in calm markets other securities are sold to buy HQLA). A shortfall is met from
        other securities (calm markets only), bonds (down to the regulatory minima, unless they
        sell only at a fire-sale discount), the medium-term facility, the rest of the bonds and
        finally the standing facility. Last, if the LCR or the liquidity ratio is below its
        minimum, the bank borrows from the medium-term facility and holds the cash in bonds."""
        spec, ledger = self.liquidity_spec, self.world.ledger
        outside, funding = ledger.outside, self.world.funding
        deposits = self.deposits
        matured = self.investments / spec.investment_term_q
        self._move(outside["capital_market"], self.account, matured, "investment_maturity")
        self.investments -= matured
        self._move(outside["money_market"], self.account, self.placements, "placement_return")
        self.placements = 0.0
        wanted = spec.wholesale_share * deposits
        if funding.rollover < 1.0:
            wanted = min(wanted, funding.rollover * self.interbank)
        self._borrow_interbank(wanted - self.interbank)
        self._move(self.account, outside["central_bank"], self.slf, "slf_repay")
        self.slf = 0.0

        reserves = (self.world.scenario.reserve_ratio + spec.excess_reserve_share) * deposits
        surplus = self.cash - reserves
        planned = spec.placement_share * deposits  # placements the bank means to make
        short_min = max(self.bonds_needed(True, planned) - self.bonds, 0.0)
        short = max(self.bonds_needed(False, planned) - self.bonds, short_min)
        if surplus < short:  # in calm markets, other securities are switched into HQLA
            surplus += self._sell_investments(short - surplus)
        surplus -= self._buy_bonds(min(short_min, max(surplus, 0.0)))
        repay = min(max(surplus, 0.0), self.mlf)
        self._move(self.account, outside["central_bank"], repay, "mlf_repay")
        self.mlf -= repay
        surplus -= repay + self._buy_bonds(min(short - short_min, max(surplus - repay, 0.0)))
        placements = min(planned, max(surplus, 0.0))
        self._move(self.account, outside["money_market"], placements, "placement")
        self.placements = placements
        surplus -= placements
        if surplus >= 0:
            self._move(self.account, outside["capital_market"], surplus, "investment")
            self.investments += surplus
        else:
            self._raise_cash(-surplus)
        self._meet_minima()

    def _sell_investments(self, amount: float) -> float:
        """Sell up to ``amount`` of other securities not pledged to the medium-term facility;
        they find buyers only in calm markets (CNY bn raised)."""
        if self.world.funding.stressed:
            return 0.0
        pledged = max(self.mlf / (1.0 - MLF_COLLATERAL_HAIRCUT) - LOAN_COLLATERAL_SHARE
                      * self.performing_loans, 0.0)  # fmt: skip
        sold = min(max(amount, 0.0), max(self.investments - pledged, 0.0))
        outside = self.world.ledger.outside
        self._move(outside["capital_market"], self.account, sold, "investment_sale")
        self.investments -= sold
        return sold

    def _raise_cash(self, need: float) -> None:
        """Raise ``need`` of cash from securities, bonds and the central bank, in the order of
        cost: other securities sell only in calm markets, bonds not at a fire-sale discount
        while the central bank lends against other securities."""
        funding = self.world.funding
        need -= self._sell_investments(need)
        fire_sale = funding.fire_sale_discount > 0
        if not fire_sale:
            need -= self._sell_bonds(min(need, self.bonds - self.bonds_needed(minima=True)))
        need -= self._borrow_mlf(need)
        if fire_sale or need > 0:
            need -= self._sell_bonds(min(need, self.bonds))
        self._borrow_slf(need)

    def _meet_minima(self) -> None:
        """Term funding from the central bank, held in bonds, for an LCR or liquidity ratio
        below its minimum."""
        gap = self.bonds_needed(minima=True) - self.bonds
        if gap > 0:
            self._buy_bonds(self._borrow_mlf(gap))

    def settle_reserves(self) -> None:
        """End of the quarter: reserves below the requirement are borrowed from the standing
        facility at its penalty rate (repaid at the next close of the books)."""
        self._borrow_slf(self.required_reserves - self.cash)

    def lose_deposits(self, share: float) -> float:
        """A deposit outflow: ``share`` of the less stable deposits leave, and of the stable
        ones in the ratio of their run-off rates (CNY bn withdrawn)."""
        rules = self.world.prudential
        relative = rules.runoff_stable_deposits / max(rules.runoff_less_stable_deposits, 1e-9)
        stable = min(share * relative, 1.0) * self.deposits_stable
        other = share * self.deposits_other
        ledger = self.world.ledger
        self._move(self.account, ledger.outside["depositors"], stable + other, "deposit_run")
        self.deposits_stable -= stable
        self.deposits_other -= other
        return stable + other

    # ------------------------------------------------------------------ moving money
    def _move(self, payer: int, payee: int, amount: float, kind: str) -> None:
        if amount > 0:
            self.world.ledger.transfer(payer, payee, amount, kind)

    def _borrow_interbank(self, change: float) -> None:
        market = self.world.ledger.outside["money_market"]
        if change >= 0:
            self._move(market, self.account, change, "interbank_borrow")
        else:
            self._move(self.account, market, -change, "interbank_repay")
        self.interbank += change

    def _borrow_slf(self, amount: float) -> None:
        if amount > 0:
            self._move(self.world.ledger.outside["central_bank"], self.account, amount, "slf")
            self.slf += amount

    def _borrow_mlf(self, amount: float) -> float:
        """Borrow up to ``amount`` from the medium-term facility against other securities and
        performing loans (credit assets the central bank accepts as collateral)."""
        collateral = self.investments + LOAN_COLLATERAL_SHARE * self.performing_loans
        room = (1.0 - MLF_COLLATERAL_HAIRCUT) * collateral - self.mlf
        amount = min(max(amount, 0.0), max(room, 0.0))
        self._move(self.world.ledger.outside["central_bank"], self.account, amount, "mlf")
        self.mlf += amount
        return amount

    def _buy_bonds(self, amount: float) -> float:
        """Buy ``amount`` of bonds in the bank's mix (CNY bn spent)."""
        if amount <= 0:
            return 0.0
        mix, outside = self._bond_mix(), self.world.ledger.outside
        self._move(self.account, outside["government"], mix * amount, "bond_purchase")
        self._move(self.account, outside["capital_market"], (1 - mix) * amount, "bond_purchase")
        self.gov_bonds += mix * amount
        self.policy_bonds += (1 - mix) * amount
        return amount

    def _sell_bonds(self, book: float) -> float:
        """Sell bonds of book value ``book`` pro rata; a fire sale loses its discount (CNY bn
        of cash raised)."""
        book = min(max(book, 0.0), self.bonds)
        if book <= 0:
            return 0.0
        gov = book * self.gov_bonds / self.bonds
        discount = self.world.funding.fire_sale_discount
        outside = self.world.ledger.outside
        self._move(outside["government"], self.account, gov * (1 - discount), "bond_sale")
        self._move(
            outside["capital_market"], self.account, (book - gov) * (1 - discount), "bond_sale"
        )
        self.gov_bonds -= gov
        self.policy_bonds -= book - gov
        self._book_pnl(-book * discount)
        self.flows["fire_sale_losses"] += book * discount
        return book * (1 - discount)
