"""A small StackOverflow-like data.xml: deterministic, stdlib only."""
import os
import random

r = random.Random(20170428)
words = "data frame plot ggplot vector list python pandas numpy function loop apply matrix regression model error install package dplyr tidyverse".split()
os.makedirs("data", exist_ok=True)
with open("data/data.xml", "w") as f:
    f.write('<?xml version="1.0" encoding="utf-8"?>\n<posts>\n')
    for i in range(1, 401):
        body = " ".join(r.choice(words) for _ in range(12))
        tags = "&lt;r&gt;&lt;ggplot2&gt;" if ("ggplot" in body or "dplyr" in body) and r.random() < 0.9 else "&lt;python&gt;"
        f.write(f'  <row Id="{i}" Body="{body}" Tags="{tags}" />\n')
    f.write("</posts>\n")
