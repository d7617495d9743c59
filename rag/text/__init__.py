"""Text every step reads: the dataset's markers, the normal form, links, identifiers, names, tokens, filler, ROUGE."""
