"""Drafting: prompts, the LLM client, the offline drafter and the safety guards."""
