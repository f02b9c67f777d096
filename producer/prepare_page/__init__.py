"""``prodseg catalog prepare --review``: the page where proposed prompts are confirmed."""
