from crewai.tools import BaseTool


class WordCountTool(BaseTool):
    name: str = "word_count"
    description: str = "Counts the words of a text."

    def _run(self, text: str) -> str:
        return str(len(text.split()))
