"""`echo_app.sentiment:app`: POST /sentiment answers VADER's polarity scores of its body. The
vaderSentiment package is not in the Ray image: the application's runtime_env installs it."""
from __future__ import annotations

from ray import serve
from starlette.requests import Request
from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


@serve.deployment
class SentimentScorer:
    def __init__(self) -> None:
        self.analyzer = SentimentIntensityAnalyzer()

    async def __call__(self, request: Request) -> dict[str, float]:
        return self.analyzer.polarity_scores((await request.body()).decode())


app = SentimentScorer.bind()
