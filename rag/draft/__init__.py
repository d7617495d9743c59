"""Drafting: the answer policy, the reply writers (offline, LLM), the guard and the drafter that runs them."""
