"""Pure logic: the data contract, parsing, totals and normalisation. No AWS imports here."""
