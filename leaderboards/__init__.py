"""The leaderboards (data, no code): installed as ``visual_robo_bench.leaderboards`` for reading outside a checkout.

``vrb leaderboard build`` regenerates the tables, page and plots here; see README.md in this folder. The file
makes the folder a regular package, so that editable installs find it too.
"""
