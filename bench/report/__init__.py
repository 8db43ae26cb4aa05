"""The answer page: leaderboard, cost at the operating point, Pareto frontier, downgrade, break-even,
charts, and the HTML / Markdown / JSON renderers; system cards; compare gates; run export."""
