"""The world of nplsim: numpy mechanisms, the legal regime, scenarios and the model."""
