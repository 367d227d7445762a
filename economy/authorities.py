"""Phase 10: the authorities at the end of the quarter — the State orders any policy carve-out,
the supervisor reviews every bank's capital and applies prompt corrective action, the State
recapitalises the banks that need it, and the central bank lends every bank the reserves it is
short of the requirement (standing facility).

Measures set here act from the next quarter: a stop on distributions when the bank closes its
books, a lending restraint when it re-lends, a mandated disposal plan when it chooses what to
dispose of.
"""

from __future__ import annotations

from nplsim.agents.bank import StateBank
from nplsim.agents.state import State
from nplsim.agents.supervisor import Supervisor
from nplsim.economy.carveout import CarveOut


class Authorities:
    """The supervisor and the State acting on the banks."""

    def __init__(
        self, supervisor: Supervisor, state: State, banks: list[StateBank], carveout: CarveOut
    ):
        self.supervisor = supervisor
        self.state = state
        self.banks = banks
        self.carveout = carveout

    def review(self) -> None:
        """The State's carve-out order, each bank's review and any recapitalisation, then the
        central bank's lending of reserves short of the requirement."""
        share = self.state.carveout_order(self.banks)
        if share > 0:
            self.carveout.execute(share)
        for bank in self.banks:
            case = self.supervisor.review(bank)
            self.state.recapitalise(bank, case)
        for bank in self.banks:  # after any injection: the central bank closes the quarter
            bank.settle_reserves()
