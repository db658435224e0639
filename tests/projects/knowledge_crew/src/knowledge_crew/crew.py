from crewai import Agent, Crew, Process, Task
from crewai.knowledge.source.csv_knowledge_source import CSVKnowledgeSource
from crewai.knowledge.source.pdf_knowledge_source import PDFKnowledgeSource
from crewai.knowledge.source.string_knowledge_source import StringKnowledgeSource
from crewai.knowledge.source.text_file_knowledge_source import TextFileKnowledgeSource
from crewai.project import CrewBase, agent, crew, task
from crewai_tools import TXTSearchTool

preferences = TextFileKnowledgeSource(file_paths=["user_preference.txt"])


@CrewBase
class KnowledgeCrew:
    @agent
    def naturalist(self) -> Agent:
        return Agent(config=self.agents_config["naturalist"],
                     tools=[TXTSearchTool(txt="knowledge/user_preference.txt")],
                     knowledge_sources=[CSVKnowledgeSource(file_paths=["owls.csv"]),
                                        PDFKnowledgeSource(file_paths=["field_guide.pdf"])])

    @task
    def answer_task(self) -> Task:
        return Task(config=self.tasks_config["answer_task"])

    @crew
    def crew(self) -> Crew:
        return Crew(agents=self.agents, tasks=self.tasks, process=Process.sequential,
                    knowledge_sources=[preferences,
                                       StringKnowledgeSource(content="Owls cannot move their eyes.")])
