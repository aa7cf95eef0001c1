"""What the runs say: the protocol as data, the seed report's numbers and claims, tables, survival
statistics of time to grok, fair comparisons of arms and the progress measures."""
