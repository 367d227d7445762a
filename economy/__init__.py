"""The economy: the model (the composition root) and the institutions of its quarter.

Above the agents (``nplsim.agents``) and the mechanisms (``nplsim.market``): the AMC auction house,
the deal desk, the trustee's servicing and payments, the ABS exchange, the power sector, the
carve-out, opening balance sheets, measurement and invariants.
"""
