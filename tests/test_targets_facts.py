"""Fact-covering targets: sentence splitting, answer spans, coverage, and the fact question generator."""

from __future__ import annotations

import pytest

from selfparam.targets import fact_questions
from selfparam.targets.fact_questions import (
    FactGenerator,
    cloze_question,
    first_question,
    holds_span,
    name_pronoun,
    question_problem,
)
from selfparam.targets.facts import (
    Fact,
    context_sentences,
    coverage,
    extract_facts,
    opening_names,
    pair_sentence,
    sentence_spans,
)
from selfparam.targets.qa import FilterConfig, select_pairs
from selfparam.targets.types import GeneratorError, QAPair
from selfparam.testing import tiny_lm

CTX = ("Mara Lindqvist opened the Blue Heron bakery in Tromsø in 2019. Its best seller is a cardamom bun. "
       "Dr. Lindqvist trained in Paris for 3 years. However, the bakery closes every August.")


def test_sentences_do_not_split_at_abbreviations_initials_or_decimals():
    assert context_sentences("Dr. Ann Lee came in 2019. She left. It was 20.8 km away. J. R. R. Tolkien wrote.") == [
        "Dr. Ann Lee came in 2019.", "She left.", "It was 20.8 km away.", "J. R. R. Tolkien wrote."]
    assert len(context_sentences(CTX)) == 4


def test_spans_are_names_numbers_dates_and_definitions_of_each_sentence():
    facts = extract_facts(CTX)
    by_sentence = {}
    for f in facts:
        assert f.answer in f.sentence and f.sentence == context_sentences(CTX)[f.sentence_index]
        by_sentence.setdefault(f.sentence_index, []).append(f.answer)
    assert by_sentence[0] == ["Mara Lindqvist", "Blue Heron", "Tromsø", "2019"]
    assert by_sentence[1] == ["cardamom bun"]  # the definition after "is a"
    assert by_sentence[2] == ["Dr. Lindqvist", "Paris", "3 years"]  # the title stays with the name
    assert by_sentence[3] == ["August"]  # "However" opens the sentence; it is no name
    assert sentence_spans("Casimir Pulaski, a Polish general, was born here in 1745.") == [
        "Casimir Pulaski", "Polish", "1745"]
    assert sentence_spans("It was played on February 7, 2016, at Levi's Stadium in Santa Clara, California.") == [
        "February 7, 2016", "Levi's Stadium", "Santa Clara", "California"]
    assert sentence_spans("Diatomic oxygen gas constitutes 20.8% of the Earth's atmosphere.") == ["20.8%", "Earth"]


def test_the_object_that_ends_a_sentence_is_a_span_unless_a_name_covers_it():
    # a knowledge edit's object ends its sentence and is often no name (CounterFact)
    assert sentence_spans("Pius III, who holds the position of bishop.") == ["Pius III", "bishop"]
    assert sentence_spans("The profession of Marpessa Dawn is politician.") == ["Marpessa Dawn", "politician"]
    assert sentence_spans("Toko Yasuda plays the guitar.") == ["Toko Yasuda", "guitar"]
    # the name is the span, never the verb phrase around it
    assert sentence_spans("In Solomon Islands, they understand English.") == ["Solomon Islands", "English"]
    # no function word before the last words, or a comma among them: no object
    assert sentence_spans("Ann baked bread.") == [] and sentence_spans("Ann sold fish, bread, jam.") == []
    assert cloze_question(Fact(0, "Pius III, who holds the position of bishop.", "bishop")) == \
        "Pius III, who holds the position of what?"


def test_wide_spans_add_counts_in_words_and_a_noun_phrase_and_keep_the_rules_spans():
    sentence = "Dioxygen forms when two atoms of oxygen bind, which one of the chemists called a simple bond."
    rules = sentence_spans(sentence)
    wide = sentence_spans(sentence, wide=True)
    assert rules == ["a simple bond"]  # no unit after "two": _QUANTITY passes over it
    # "one" stops before "of"; the noun phrase after "the" ends where the definition starts
    assert wide == ["two atoms", "one", "chemists called", "a simple bond"]
    assert sentence_spans("Seven universities in Scotland offer the teacher education program.", wide=True) == [
        "Seven universities", "Scotland", "teacher education program"]
    # a noun phrase after an article, beyond the fallback for sentences with no other span
    assert sentence_spans("Heat leaves in the condenser of Tom's engine.") == ["Tom"]
    assert sentence_spans("Heat leaves in the condenser of Tom's engine.", wide=True) == ["condenser", "Tom"]
    assert sentence_spans("Heat is rejected in the condenser.", wide=True) == ["condenser"]  # no duplicate
    # the default extraction is the rules' (the cached sets were built with it)
    assert [f.answer for f in extract_facts(CTX)] == [f.answer for f in extract_facts(CTX, wide=False)]
    assert {f.answer for f in extract_facts(CTX)} <= {f.answer for f in extract_facts(CTX, wide=True)}


def test_coverage_counts_sentences_some_pair_is_about():
    pairs = [QAPair("Who opened the Blue Heron bakery in Tromsø?", "Mara Lindqvist"),
             QAPair("In what year did the Blue Heron bakery open?", "2019"),
             QAPair("Where did Dr. Lindqvist train?", "Paris"),
             QAPair("What is the capital of Peru?", "Lima")]  # about no sentence of the context
    cov = coverage(CTX, pairs)
    assert (cov.sentences, cov.covered, cov.pairs_per_sentence, cov.unplaced) == (4, 2, (2, 0, 1, 0), 1)
    assert cov.share == 0.5 and cov.to_dict()["share"] == 0.5
    assert coverage(CTX, []).share == 0.0 and coverage("", []).share == 0.0
    # the sentence holding the answer wins a tie of shared words
    sentences = ["Ann baked bread in Oslo.", "Ann baked bread in Rome."]
    assert pair_sentence(QAPair("Where did Ann bake bread?", "Rome"), sentences) == 1


def test_question_checks():
    assert first_question(" In what year was it?\nQuestion: again?") == "In what year was it?"
    assert first_question("no question here") == ""
    assert question_problem("When was it founded?", "1987") == "pronoun"
    assert question_problem("Though Chopin was born in Wola, when did he move to Warsaw?", "1810") is None
    assert holds_span("In 1745.", "1745") and not holds_span("No idea.", "1745")
    assert not holds_span("Władysław Szpilman, a Polish general and hero of the war, was born here", "Polish")
    assert question_problem("Who opened Mara Lindqvist's bakery?", "Mara Lindqvist") == "answer_in_question"
    assert question_problem("", "x") == "no_question"
    assert question_problem("Who opened the Blue Heron bakery?", "Mara Lindqvist") is None


@pytest.fixture
def tiny_long():
    return tiny_lm(seed=0, max_position_embeddings=2048)


def _fake_sampler(prompts_seen, calls=None):
    """For each fact prompt: the fact's sentence turned into a question, then one with a pronoun, then the first
    again (a prompt's k-th row gets the k-th of these)."""

    def sample(lm, prompts, max_new_tokens, temperature, top_p, seed, stop, batch_size):
        assert stop == ("?",)
        if calls is not None:
            calls.append(len(prompts))
        texts, rows = [], {}
        for prompt in prompts:
            if prompt not in rows:
                prompts_seen.append(prompt)
            k = rows[prompt] = rows.get(prompt, -1) + 1
            window, answer = prompt.rsplit("Text: ", 1)[1].split("<|im_end|>")[0].split("\nAnswer: ")
            good = " Say: " + context_sentences(window)[-1].replace(answer, "what").rstrip(".") + "?\nmore"
            texts.append([good, " When did it happen?", good][k])
        return texts

    return sample


def test_cloze_questions_ask_for_the_span():
    assert cloze_question(Fact(0, "Casimir Pulaski was born in Warsaw in 1745.", "1745")) == \
        "Casimir Pulaski was born in Warsaw in what year?"
    assert cloze_question(Fact(0, "Casimir Pulaski was born in Warsaw in 1745.", "Casimir Pulaski")) == \
        "Who was born in Warsaw in 1745?"
    assert cloze_question(Fact(0, "Oxygen has the symbol O.", "O")) == "Oxygen has the symbol what?"  # not Oxygen's O
    assert cloze_question(Fact(0, "Gas makes up 20.8% of the air.", "20.8%")) == \
        "Gas makes up what percentage of the air?"
    assert cloze_question(Fact(0, "It lies 60 km from Warsaw.", "60 km")) == "It lies how many km from Warsaw?"
    assert cloze_question(Fact(0, "Warsaw.", "Warsaw")) is None


LONG = ("At the beginning of 1893 Westinghouse engineer Benjamin Lamme had made great progress developing an efficient "
        "version of Tesla's induction motor and Westinghouse Electric started branding their complete polyphase phase "
        "AC system as the \"Tesla Polyphase System\", noting how they believed Tesla's patents gave them patent "
        "priority over other AC systems.")  # SQuAD's Nikola_Tesla/32: one sentence of 55 words


def test_a_cloze_of_a_long_sentence_asks_the_words_near_its_span():
    facts = extract_facts(LONG)
    questions = [cloze_question(f) for f in facts]
    assert len(facts) >= 3 and all(q and len(q.split()) <= 30 for q in questions), questions
    sold = ("Tesla sold the patents, which he had filed in 1888, to Westinghouse in a deal that made headlines in "
            "every newspaper of the country and in every magazine of Europe for weeks and weeks on end.")  # 35 words
    assert cloze_question(Fact(0, sold, "1888")) == "Which he had filed in what year?"  # the span's clause
    assert "as the \"what\", noting" in questions[-1]  # the sentence's own punctuation around the span is kept
    kept, _ = select_pairs([QAPair(q, f.answer) for q, f in zip(questions, facts)], LONG, FilterConfig())
    assert kept  # before, every cloze of this paragraph was dropped as a long question and the set failed


def test_fact_generator_returns_questions_whose_answers_are_spans(tiny_long, monkeypatch):
    prompts, asked = [], []
    facts = extract_facts(CTX)

    def teacher(lm, ps, max_new_tokens, **_):  # knows which fact each question asks for, and says so
        asked.extend(ps)
        return [next((f"It is {f.answer}." for f in facts if (cloze_question(f) or "\0") in p
                      or f.sentence.replace(f.answer, "what").rstrip(".") + "?" in p), "No idea.") for p in ps]

    calls = []
    monkeypatch.setattr(fact_questions, "sample_each", _fake_sampler(prompts, calls))
    monkeypatch.setattr(fact_questions, "generate", teacher)
    gen = FactGenerator(tiny_long, phrasings=3, teacher_answers=False)
    pairs = gen.generate(CTX, n=100, seed=0)
    in_second = sum(f.sentence_index == 1 for f in facts)  # "Its best seller ...": every question has a pronoun
    assert len(prompts) == len(facts)  # every fact's model phrasings from one prompt
    assert calls == [2 * (len(facts) - in_second) + 3 * in_second]  # all in one batch: 2 rows a fact, 3 without cloze
    assert pairs[0] == QAPair("Who opened the Blue Heron bakery in Tromsø in 2019?", "Mara Lindqvist")  # cloze first
    assert all(p.answer in CTX for p in pairs)  # teacher_answers=False: the spans themselves
    assert {p.answer for p in pairs} == {f.answer for f in facts if f.sentence_index != 1}
    assert gen.dropped == {"pronoun": len(facts) - in_second + 3 * in_second, "cloze_pronoun": in_second}
    assert len(asked) == len(pairs) == 2 * (len(facts) - in_second)  # a cloze and a model-written one per fact
    # round robin: the first fact of every sentence is asked before any second fact
    assert [prompts[i].rsplit("Answer: ", 1)[1].split("<|im_end|>")[0] for i in range(4)] == [
        "Mara Lindqvist", "cardamom bun", "Dr. Lindqvist", "August"]
    # the window: a fact's sentence with the one before it
    assert "Text: Mara Lindqvist opened the Blue Heron bakery in Tromsø in 2019. Its best seller" in prompts[1]
    kept, dropped = select_pairs(pairs, CTX)
    cov = coverage(CTX, kept)
    assert cov.share == 0.75 and cov.pairs_per_sentence[1] == 0 and cov.unplaced == 0


def test_a_paragraph_whose_clozes_all_have_a_pronoun_keeps_them_rather_than_none(tiny_long, monkeypatch):
    ctx = "It lies 60 km from Warsaw. Its river was bridged in 1745."  # every sentence leans on "it"
    monkeypatch.setattr(fact_questions, "sample_each", _fake_sampler([]))
    monkeypatch.setattr(fact_questions, "generate", lambda lm, ps, max_new_tokens, **_: ["No idea."] * len(ps))
    gen = FactGenerator(tiny_long, phrasings=2, teacher_answers=True)
    pairs = gen.generate(ctx, n=10, seed=0)
    assert pairs and all(p.answer in ctx for p in pairs)  # the clozes, answered with their spans
    assert QAPair("It lies how many km from Warsaw?", "60 km") in pairs
    assert gen.dropped["vague_clozes_kept"] == len(pairs) and gen.dropped["cloze_pronoun"] == len(pairs)


def test_a_pronoun_is_named_by_the_nearest_opening_name_that_fits_it():
    ctx = ("Fresno lies in the valley of Fresno County. The Tower Theatre opened in 1939. Mara Lindqvist sang there. "
           "It seats 700 people. Its stage is 9 m wide. She was born in Tromsø. They left in 1950.")
    openings = opening_names(ctx)
    assert openings == ["Fresno", "the Tower Theatre", "Mara Lindqvist", None, None, None, None]
    # "it": the nearest thing (a person is skipped); "its": its genitive; "she": the nearest person
    assert name_pronoun("It seats how many people?", openings, 3) == "The Tower Theatre seats how many people?"
    assert name_pronoun("Its stage is how many m wide?", openings, 4) == "The Tower Theatre's stage is how many m wide?"
    assert name_pronoun("She was born in what?", openings, 5) == "Mara Lindqvist was born in what?"
    assert name_pronoun("In what year did it open?", openings, 3) == "In what year did the Tower Theatre open?"
    # a one-word name may stand for either; "they" and a sentence before any name are left alone (None)
    assert name_pronoun("He was born in what year?", ["Chopin", None], 1) == "Chopin was born in what year?"
    assert name_pronoun("They left in what year?", openings, 6) is None
    assert name_pronoun("It lies how many km away?", [None, None], 1) is None
    assert name_pronoun("Mara Lindqvist sang where?", openings, 2) == "Mara Lindqvist sang where?"  # nothing to name
    # kept as they are: the pronoun follows the name its sentence opens with, or a wh-word of its kind; "there is"
    assert name_pronoun("CBS broadcast its shows when?", ["CBS"], 0) == "CBS broadcast its shows when?"
    assert name_pronoun("Parachutes slowed its descent to what?", [None], 0) is None  # a capital is not a name
    assert name_pronoun("Who won in his first season?", [None], 0) == "Who won in his first season?"
    assert name_pronoun("What kept its shape?", [None], 0) == "What kept its shape?"
    assert name_pronoun("Who returned it how many yards?", [None], 0) is None  # "who" is not an "it"
    assert name_pronoun("There were how many casualties?", [None], 0) == "There were how many casualties?"


def test_fact_generator_names_pronouns_only_when_asked(tiny_long, monkeypatch):
    ctx = "Fresno lies in the valley of Fresno County. It lies 60 km from Warsaw."
    monkeypatch.setattr(fact_questions, "sample_each", _fake_sampler([]))
    monkeypatch.setattr(fact_questions, "generate", lambda lm, ps, max_new_tokens, **_: ["No idea."] * len(ps))
    named = FactGenerator(tiny_long, phrasings=1, teacher_answers=True, pronouns="name")
    pairs = named.generate(ctx, n=10, seed=0)
    assert QAPair("Fresno lies how many km from Warsaw?", "60 km") in pairs
    assert named.dropped["cloze_pronoun_resolved"] == 2 and "cloze_pronoun" not in named.dropped  # 60 km and Warsaw
    dropped = FactGenerator(tiny_long, phrasings=1, teacher_answers=True)
    pairs = dropped.generate(ctx, n=10, seed=0)
    assert pairs and all(not p.question.startswith(("It ", "Fresno lies how")) for p in pairs)
    assert dropped.dropped["cloze_pronoun"] == 2 and "cloze_pronoun_resolved" not in dropped.dropped
    with pytest.raises(ValueError, match="pronouns: 'guess' is not one of drop, name"):
        FactGenerator(tiny_long, pronouns="guess")


CTX3 = ("Mara Lindqvist opened the Blue Heron bakery in Tromsø in 2019. The Blue Heron bakery sells a cardamom bun. "
        "Dr. Lindqvist trained in Paris for 3 years.")


def test_fact_generator_stops_when_enough_and_keeps_the_teachers_answer_with_the_span(tiny_long, monkeypatch):
    asked = []

    def teacher(lm, prompts, max_new_tokens, **_):
        asked.extend(prompts)
        return ["Mara Lindqvist opened it." if "Who opened" in p else "No idea." for p in prompts]

    monkeypatch.setattr(fact_questions, "generate", teacher)
    pairs = FactGenerator(tiny_long, phrasings=1, teacher_answers=True).generate(CTX3, n=3, seed=0)
    assert len(asked) == 3  # one fact per sentence was enough: the rest were never asked
    assert pairs == [QAPair("Who opened the Blue Heron bakery in Tromsø in 2019?", "Mara Lindqvist opened it."),
                     QAPair("The what bakery sells a cardamom bun?", "Blue Heron"),  # "No idea.": the span
                     QAPair("Who trained in Paris for 3 years?", "Dr. Lindqvist")]


def test_model_written_questions_the_teacher_does_not_answer_with_the_span_are_dropped(tiny_long, monkeypatch):
    monkeypatch.setattr(fact_questions, "sample_each", _fake_sampler([]))
    monkeypatch.setattr(fact_questions, "generate", lambda lm, ps, max_new_tokens, **_: ["No idea."] * len(ps))
    gen = FactGenerator(tiny_long, phrasings=2)
    pairs = gen.generate(CTX3, n=100, seed=0)
    assert all(not p.question.startswith("Say:") for p in pairs) and gen.dropped["teacher_disagrees"] == len(pairs)


def test_the_plain_path_samples_one_fact_at_a_time_and_answers_one_question_at_a_time(tiny_long, monkeypatch):
    """`reuse_prompt_cache=False`, the bench's naive reference: one fact's phrasings per call, every row to its
    end (no stop string), and the teacher answers one question per call; the same pairs."""
    def no_batch(*args, **kw):
        raise AssertionError("the plain path samples no batch of facts")

    calls = []

    def fake_generate(lm, prompts, max_new_tokens, batch_size=16, do_sample=False, **kw):
        assert "stop" not in kw
        calls.append((len(prompts), batch_size, do_sample, prompts[0]))
        if do_sample:  # the phrasings: one fixed question per row
            return ["Who opened the bakery in Tromsø?"] * len(prompts)
        return ["It is Mara Lindqvist."] * len(prompts)

    monkeypatch.setattr(fact_questions, "generate", fake_generate)
    monkeypatch.setattr(fact_questions, "sample_each", no_batch)
    plain = FactGenerator(tiny_long, phrasings=2, reuse_prompt_cache=False).generate(CTX3, n=100, seed=0)
    sampled = [c for c in calls if c[2]]
    assert sampled and all("Text: " in c[3] and c[3].startswith("<|im_start|>") for c in sampled)  # whole prompts
    assert len({c[3] for c in sampled}) == len(sampled)  # one fact per call
    answered = [c for c in calls if not c[2]]
    assert len(answered) == 1 and answered[0][1] == 1  # every question, one per forward batch
    assert plain and all(p.answer for p in plain)


def test_rounds_ask_no_fact_that_one_at_a_time_would_not(tiny_long, monkeypatch):
    """Facts are sampled in rounds no larger than could still be needed, so the facts asked are those that asking
    one at a time and stopping when enough would ask: 5 pairs at 2 phrasings need 3 facts at least (4 rows: the
    second fact's cloze leans on "Its", so the model writes both its questions); they give 4 pairs (one row writes
    no question, one a pronoun), so a second round asks 1 more fact."""
    calls = []
    sampler = _fake_sampler([], calls)
    dropped_once = []

    def sample(lm, prompts, *args, **kw):
        texts = sampler(lm, prompts, *args, **kw)
        if not dropped_once:  # the first row of the first round writes no question
            dropped_once.append(True)
            texts[0] = " no question here"
        return texts

    monkeypatch.setattr(fact_questions, "sample_each", sample)
    monkeypatch.setattr(fact_questions, "generate", lambda lm, ps, max_new_tokens, **_: ["No idea."] * len(ps))
    gen = FactGenerator(tiny_long, phrasings=2, teacher_answers=False)
    gen.generate(CTX, n=5, seed=0)
    assert calls == [4, 1] and gen.dropped["no_question"] == 1


def test_fact_generator_on_the_tiny_model_and_its_errors(tiny_long):
    gen = FactGenerator(tiny_long, phrasings=2, max_new_tokens=6)
    pairs = gen.generate(CTX, n=5, seed=0)
    assert gen.generate(CTX, n=5, seed=0) == pairs  # seeded
    assert all(p.answer in CTX or any(f.answer in p.answer for f in extract_facts(CTX)) for p in pairs)
    with pytest.raises(GeneratorError, match="no facts"):
        gen.generate("nothing here at all to ask about.", n=5, seed=0)
    with pytest.raises(ValueError, match="phrasings"):
        FactGenerator(tiny_long, phrasings=0)


def test_questions_facts_is_wired_through_target_config():
    from selfparam.targets import (
        FactGenerator,
        LocalGenerator,
        QAPair,
        TargetConfig,
        TargetSet,
        cache_key,
        make_generator,
        target_set_to_dict,
    )
    from selfparam.testing import tiny_lm

    lm = tiny_lm(seed=0)
    assert isinstance(make_generator(TargetConfig(questions="facts", fact_phrasings=2), lm), FactGenerator)
    paper = TargetConfig(questions="paper")
    assert isinstance(make_generator(paper, lm), LocalGenerator)
    # fact questions are the default where the local model writes the pairs; the paper's with a file or endpoint
    assert TargetConfig().questions == "facts" and isinstance(make_generator(TargetConfig(), lm), FactGenerator)
    assert TargetConfig(pairs_file="p.jsonl").questions == "paper"
    assert TargetConfig(generator_url="http://x/v1", generator_model="m").questions == "paper"
    # at the values that behave as before them the new settings stay out of the cache key: sets built before
    # them stay valid
    assert "questions" not in cache_key(paper, lm)["config"]
    assert cache_key(TargetConfig(questions="facts"), lm)["config"]["questions"] == "facts"
    # fact sets also depend on the span rules' version; the paper's sets do not
    assert cache_key(TargetConfig(questions="facts"), lm)["fact_rules"] >= 2 and "fact_rules" not in cache_key(
        paper, lm)
    # the wide spans: another extractor, named in the sets' description, under another key; refused off facts
    wide = TargetConfig(questions="facts", fact_spans="wide")
    assert "fact_spans" not in cache_key(TargetConfig(questions="facts"), lm)["config"]
    assert cache_key(wide, lm)["config"]["fact_spans"] == "wide"
    generator = make_generator(wide, lm)
    assert generator.description.endswith(" spans=wide")
    assert "spans=" not in make_generator(TargetConfig(), lm).description
    assert "two atoms" in [f.answer for f in generator.extract("Oxygen binds two atoms of hydrogen in water.")]
    with pytest.raises(ValueError, match="fact_spans: 'all' is not one of rules, wide"):
        TargetConfig(fact_spans="all")
    with pytest.raises(ValueError, match="fact_spans: applies to fact-covering questions"):
        TargetConfig(questions="paper", fact_spans="wide")
    # naming pronouns: the same extractor, other clozes, so another key and description; refused off facts
    named = TargetConfig(questions="facts", fact_pronouns="name")
    assert "fact_pronouns" not in cache_key(TargetConfig(questions="facts"), lm)["config"]
    assert cache_key(named, lm)["config"]["fact_pronouns"] == "name"
    assert make_generator(named, lm).description.endswith(" pronouns=name")
    with pytest.raises(ValueError, match="fact_pronouns: 'guess' is not one of drop, name"):
        TargetConfig(fact_pronouns="guess")
    with pytest.raises(ValueError, match="fact_pronouns: applies to fact-covering questions"):
        TargetConfig(questions="paper", fact_pronouns="name")
    # fact questions carry the teacher's span-checked answers: no second re-answering
    assert paper.teacher_rewrites_answers and not TargetConfig(questions="facts").teacher_rewrites_answers
    with pytest.raises(ValueError, match="questions"):
        TargetConfig(questions="trivia")
    with pytest.raises(ValueError, match="pairs_file"):
        TargetConfig(questions="facts", pairs_file="pairs.jsonl")
    ts = TargetSet("Ann baked bread. Bob sold fish.", [QAPair("Who baked bread?", "Ann")])
    assert target_set_to_dict(ts)["coverage"]["share"] == 0.5
