"""What the investor community knows when it prices a deal: the pool as disclosed, the lemons
discount the originator's selection implies, the originator's track record, and how likely a court
is to freeze the pool — all from the economy's own state.

Investors watch every originator's capital cushion each quarter (public balance sheets) and count
its episodes of distress; they estimate each originator's probability of distress over a deal's
life from its cushion and the volatility and distress history they have observed
(``nplsim.market.legal_risk``). At each cut-off they work out the rational expectation of the pool
the originator chose (``nplsim.market.learning``); after closing, the trustee's reports of each
deal's collections update their belief about the originator's bias.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from nplsim.agents.spv import SpecialPurposeVehicle
from nplsim.economy.world import EconomyWorld
from nplsim.market import learning, legal_risk, pricing, remainder_sale
from nplsim.market.workout_value import collections_outlook, expected_workout_value_within

# Assumption (facts: bank-capital-series: total CAR moved 0.4-0.5 pp a year in 2011-23): before
# they have seen any, investors expect a capital ratio to move 0.3 pp a quarter, with the weight
# of this many observed quarters.
CUSHION_VOL_PRIOR_Q = 0.003
CUSHION_VOL_PRIOR_WEIGHT = 8.0
# Assumption: investors start as if one distress episode had happened where the structural model
# expected one (the history then moves the scale away from 1).
DISTRESS_EPISODE_PRIOR = 1.0


@dataclass
class KindHistory:
    """What investors have seen of one kind of originator (banks, AMCs)."""

    squared_moves: float = 0.0  # sum of squared quarterly changes of the capital cushion
    moves: int = 0
    episodes: float = 0.0  # entries into distress observed
    expected_episodes: float = 0.0  # entries the structural model predicted, quarter by quarter

    @property
    def vol_q(self) -> float:
        """Quarterly s.d. of the capital cushion, the prior blended with what was observed."""
        prior = CUSHION_VOL_PRIOR_WEIGHT * CUSHION_VOL_PRIOR_Q**2
        return float(
            np.sqrt((prior + self.squared_moves) / (CUSHION_VOL_PRIOR_WEIGHT + self.moves))
        )

    def observe_quarter(self, last_cushion: float, vol_q: float, entered: bool) -> None:
        """A quarter of one that was not distressed at its start: the structural chance that it
        would enter distress from ``last_cushion`` within the quarter, and whether it did."""
        self.expected_episodes += legal_risk.first_passage_prob(last_cushion, vol_q, 1.0)
        self.episodes += float(entered)


@dataclass
class DealRecord:
    """A deal's record in investors' eyes: what they expected each quarter and what came."""

    originator: int  # the originator's account
    schedule: np.ndarray  # expected gross collections by quarter after closing (selection only)
    bias_factor: float  # the originator's bias investors priced in on top
    closing_quarter: int
    cv2: np.ndarray  # squared coefficient of variation of collections to date, by quarter
    collected: list[float] = field(default_factory=list)
    complete: bool = False  # the deal has ended: its pool is empty or it reached maturity

    @property
    def expected_to_date(self) -> float:
        """Collections the rule of selection alone predicted so far; once the deal has ended,
        everything it was expected to collect (a pool that emptied early has collected all it
        ever will, so comparing it only with the quarters it lived would flatter it)."""
        if self.complete:
            return float(self.schedule.sum())
        return float(self.schedule[: len(self.collected)].sum())

    def relative_var(self, pool_var: float) -> float:
        """Variance of the ratio of collections to date to their expectation, for a correct
        expectation: the pool's own dispersion (log-variance ``pool_var``) times the luck of
        which of its loans have been resolved so far (a pool of few loans can collect nothing
        for years; ``cv2``)."""
        due = self.cv2.size if self.complete else min(len(self.collected), self.cv2.size)
        if due <= 0 or not np.isfinite(self.cv2[due - 1]):
            return float("inf")
        return float(np.exp(pool_var) * (1.0 + self.cv2[due - 1]) - 1.0)


@dataclass(frozen=True)
class PoolView:
    """Investors' view of a pool at closing (CNY bn).

    Attributes:
        public_mean: expected PV of the pool's collections from the disclosed data (risk-free
            discount, net of capped disposal costs), before any selection discount.
        cash: the vehicle's cash (collections since the cut-off), known exactly.
        lemons: the rational selection factor of the pool.
        belief: investors' belief about the originator's bias.
        sigma_full: log-s.d. of collections with full disclosure and a known originator.
        sigma_seen: the log-s.d. investors actually face.
        borrowers: real borrowers in the pool.
        cv2: squared coefficient of variation of its collections cumulated to each quarter.
        schedule: expected gross collections by quarter after closing (selection factor only).
        life_q: collection-weighted mean time to collect, quarters.
        resolve_prob: the servicer's quarterly chance of resolving a loan.
    """

    public_mean: float
    cash: float
    lemons: float
    belief: learning.Belief
    sigma_full: float
    sigma_seen: float
    borrowers: float
    cv2: np.ndarray
    schedule: np.ndarray
    life_q: float
    resolve_prob: float

    @property
    def factor(self) -> float:
        """Investors' expected ratio of realised to disclosed collections."""
        return self.lemons * self.belief.factor

    @property
    def pool_mean(self) -> float:
        """Expected PV of the pool's future collections investors price on (without the cash)."""
        return self.factor * self.public_mean

    @property
    def mean(self) -> float:
        """Expected PV of everything the deal will have: future collections and its cash."""
        return self.pool_mean + self.cash


class InvestorView:
    """The investor community's knowledge of originators and pools."""

    def __init__(self, world: EconomyWorld, originators: list):
        self.world = world
        self.originators = originators
        self.history: dict[str, KindHistory] = {}
        self.last_cushion: dict[int, float] = {}
        self.was_distressed: dict[int, bool] = {}
        self.records: dict[int, DealRecord] = {}  # by deal id

    # ------------------------------------------------------------------ distress
    def observe_originators(self) -> None:
        """This quarter's capital cushions and distress of every originator (public accounts)."""
        for originator in self.originators:
            history = self.history.setdefault(originator.originator_kind, KindHistory())
            cushion = originator.capital_cushion
            account = originator.account
            if account in self.last_cushion:
                last = self.last_cushion[account]
                if not self.was_distressed[account]:
                    history.observe_quarter(last, history.vol_q, originator.distressed)
                history.squared_moves += (cushion - last) ** 2
                history.moves += 1
            self.last_cushion[account] = cushion
            self.was_distressed[account] = originator.distressed

    def distress_probability(self, originator, horizon_q: float) -> float:
        """Investors' probability that ``originator`` falls into distress within the horizon."""
        history = self.history.get(originator.originator_kind, KindHistory())
        return legal_risk.distress_probability(
            originator.capital_cushion, history.vol_q, horizon_q, history.episodes,
            history.expected_episodes, DISTRESS_EPISODE_PRIOR,
        )  # fmt: skip

    def legal_exposure(self, originator, resolve_prob: float) -> pricing.LegalExposure:
        """A new deal's exposure to recharacterisation of its true sale (``LegalExposure``)."""
        world = self.world
        regime, spec = world.regime, world.scenario.securitisation
        return pricing.LegalExposure(
            distress_prob=self.distress_probability(originator, spec.tenor_q),
            court_reach=legal_risk.court_reach(regime.bankruptcy_remoteness, regime.spv_form),
            pool_loss=legal_risk.pool_loss_given_recharacterisation(
                spec.freeze_q, resolve_prob, spec.recharacterisation_haircut,
                regime.investor_protection,
            ),
            freeze_q=spec.freeze_q,
        )  # fmt: skip

    # ------------------------------------------------------------------ pools
    def lemons_factor(self, originator, idx: np.ndarray) -> float:
        """The rational expectation of a pool the originator chose, from the terms of its choice
        (its incentives are public: prices, capital and NPL ratios, retention)."""
        regime, config = self.world.regime, self.world.scenario
        terms = originator.selection_incentives(idx)
        lower, upper = learning.selection_bounds(
            terms.price_ratio, terms.retained_share, terms.servicing_share, terms.hold_ratio,
            terms.other_gain, terms.alternative,
        )  # fmt: skip
        private = learning.private_variance(
            regime.disclosure_level, config.borrower_quality_dispersion
        )
        return learning.lemons_factor(terms.public_value, lower, upper, private)

    def public_values(self, spv: SpecialPurposeVehicle) -> np.ndarray:
        """Investors' PV of each live loan's collections from the disclosed data (risk-free
        discount, the servicer's workout, net of the capped disposal costs and the vehicle's
        taxes)."""
        world = self.world
        config = world.scenario
        p_resolve = world.resolve_probability(spv.servicer.workout_skill)
        discount_q = (1.0 + config.macro.gov_bond_yield) ** -0.25
        regime, spec = world.regime, config.securitisation
        form = spv.terms.spv_form if spv.terms is not None else regime.spv_form
        leakage = pricing.collection_leakage(regime, spec, form)
        return expected_workout_value_within(
            world.loans, spv.live_slots, world.quarter, p_resolve, discount_q,
            config.claim_end_age_q, leakage, spv.final_quarter - world.quarter,
            world.regime.disclosure_level, self.terminal_prices(spv),
        )  # fmt: skip

    def terminal_prices(self, spv: SpecialPurposeVehicle) -> np.ndarray | None:
        """What investors expect the loans left at the deal's legal final maturity to fetch, per
        unit of base recovery by age (``remainder_sale``; None where they are written off)."""
        borrowers = float(self.world.loans.borrowers(spv.live_slots).sum())
        return remainder_sale.terminal_prices(self.world, borrowers)

    def public_value(self, spv: SpecialPurposeVehicle) -> float:
        """The pool's disclosed value now (``public_values`` summed)."""
        return float(self.public_values(spv).sum())

    def pool_view(self, spv: SpecialPurposeVehicle) -> PoolView:
        """Investors' view of a pool now: disclosed value, selection, track record, dispersion."""
        world = self.world
        regime, config = world.regime, world.scenario
        spec = config.securitisation
        idx = spv.live_slots
        p_resolve = world.resolve_probability(spv.servicer.workout_skill)
        public = self.public_values(spv)
        horizon = max(spv.final_quarter - world.quarter, 1)
        outlook = collections_outlook(
            world.loans, idx, world.quarter, p_resolve, config.claim_end_age_q, horizon,
            regime.disclosure_level, self.terminal_prices(spv),
        )  # fmt: skip
        schedule = spv.pool.lemons_factor * outlook.schedule
        belief = self.belief(spv.originator, float(np.log(max(spv.pool.lemons_factor, 1e-6))) ** 2)
        borrowers = float(world.loans.borrowers(idx).sum())
        systematic = pricing.collection_sigma(
            regime.disclosure_level, spec.sigma_floor, spec.sigma_opacity
        )
        idiosyncratic = float(np.sqrt(np.expm1(config.borrower_quality_dispersion**2)))
        quarters = np.arange(1, schedule.size + 1)
        life = float(np.average(quarters, weights=schedule)) if schedule.sum() > 0 else 0.0
        return PoolView(
            public_mean=float(public.sum()),
            cash=spv.cash,
            lemons=spv.pool.lemons_factor,
            belief=belief,
            sigma_full=pricing.pool_sigma(spec.sigma_floor, idiosyncratic, borrowers, 0.0),
            sigma_seen=pricing.pool_sigma(systematic, idiosyncratic, borrowers, belief.var),
            borrowers=borrowers,
            cv2=outlook.cv2,
            schedule=schedule,
            life_q=life,
            resolve_prob=p_resolve,
        )

    # ------------------------------------------------------------------ track record
    def open_record(self, spv: SpecialPurposeVehicle, view: PoolView) -> None:
        """A deal closed: investors start following its collections against the schedule."""
        world = self.world
        self.records[spv.deal_id] = DealRecord(
            spv.originator.account, view.schedule, view.belief.factor, world.quarter, view.cv2,
        )  # fmt: skip

    def record_collections(self, deal_id: int, amount: float) -> None:
        """The trustee's report of a quarter's collections of a deal (from the quarter after
        closing)."""
        record = self.records.get(deal_id)
        if record is None or self.world.quarter <= record.closing_quarter:
            return
        if len(record.collected) < record.schedule.size:
            record.collected.append(amount)

    def complete_record(self, deal_id: int) -> None:
        """The trustee's final report: the deal has ended and collects nothing more."""
        record = self.records.get(deal_id)
        if record is not None:
            record.complete = True

    def belief(self, originator, prior_var: float) -> learning.Belief:
        """Investors' posterior about the originator's bias from its deals' collections so far,
        from a prior of log-variance ``prior_var``."""
        mine = [r for r in self.records.values() if r.originator == originator.account]
        mine = [r for r in mine if r.collected and r.expected_to_date > 0]
        pool_var = self.world.scenario.securitisation.sigma_floor**2
        return learning.update_bias(
            prior_var,
            np.array([sum(r.collected) for r in mine]),
            np.array([r.expected_to_date for r in mine]),
            np.array([r.relative_var(pool_var) for r in mine]),
        )  # fmt: skip

    def expected_path(self, deal_id: int) -> tuple[float, float]:
        """Collections investors priced in for a deal's latest reported quarter and cumulated to
        it (what the servicer's incentive fee and the trigger measure collections against)."""
        record = self.records[deal_id]
        quarters = max(len(record.collected), 1)
        this = float(record.schedule[quarters - 1]) if quarters <= record.schedule.size else 0.0
        return this * record.bias_factor, record.expected_to_date * record.bias_factor

    def collected(self, deal_id: int) -> float:
        """A deal's collections since closing, as the trustee reported them."""
        record = self.records.get(deal_id)
        return float(sum(record.collected)) if record is not None else float("nan")

    def realised_to_expected(self, deal_id: int) -> float:
        """A deal's collections so far over what investors priced in for the same quarters."""
        record = self.records.get(deal_id)
        if record is None or record.expected_to_date <= 0:
            return float("nan")
        return sum(record.collected) / (record.expected_to_date * record.bias_factor)
