"""The #{...} language: templates, parsing, precedence, names, lists, errors and positions."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, datetime

import pytest

from engine.definition.expressions import (
    Reference,
    evaluate_expression,
    evaluate_template,
    parse_template,
)
from engine.errors import ExpressionEvalError, ExpressionSyntaxError

START = datetime(2011, 5, 24, 17, 10, tzinfo=UTC)


class DictScope:
    """A scope over a dict, offering names() for suggestions."""

    def __init__(self, values: dict[str, object]) -> None:
        self.values = values
        self.looked_up: list[str] = []

    def lookup(self, name: str) -> object:
        self.looked_up.append(name)
        return self.values[name]

    def names(self) -> Iterable[str]:
        return self.values.keys()


class BareScope:
    """A scope without names(): no suggestions."""

    def __init__(self, values: dict[str, object]) -> None:
        self.values = values

    def lookup(self, name: str) -> object:
        return self.values[name]


def make_scope() -> DictScope:
    output = DictScope({"directoryPath": "s3://out/dir", "@id": "Out"})
    input_node = DictScope({"directoryPath": "s3://in/dir", "@id": "In", "output": output})
    second = DictScope({"directoryPath": "s3://in2", "@id": "In2"})
    return DictScope({
        "@scheduledStartTime": START,
        "@id": "@Activity_2011-05-24T17:10:00",
        "myList": ["one", "two"],
        "myList2": ["a", "b"],
        "myEmpty": [],
        "myNumbers": [1, 2],
        "myCount": 5,
        "myCountText": "5",
        "myRatio": "0.25",
        "myWord": "abc",
        "myDate": "2011-05-24T17:10:00",
        "mySchedulePeriod": "2011-05-24T17:10:00",
        "*myPassword": "hunter2-s3cr3t",
        "input": input_node,
        "node": input_node,
        "parent": DictScope({"@id": "ParentDefaults"}),
        "inputs": [input_node, second],
        "table": "events",
        "flag": True,
    })


@pytest.fixture
def scope() -> DictScope:
    return make_scope()


# --- literal text -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        "",
        "plain text",
        "s3://bucket/${INPUT1_STAGING_DIR}/$1/$VAR",
        "echo ${#arr[@]} } { # #x {#} $#",
        "for f in $(ls ${INPUT1_STAGING_DIR}); do echo $f; done",
        "'quoted' \"text\" \\ backslash",
    ],
)
def test_text_without_expressions_is_literal(text: str, scope: DictScope) -> None:
    template = parse_template(text)
    assert template.is_constant
    assert template.references() == []
    assert template.evaluate(scope) == text
    assert scope.looked_up == []


def test_shell_variables_next_to_expressions_are_untouched(scope: DictScope) -> None:
    text = "(cd ${INPUT1_STAGING_DIR} && ./run #{table}) > ${OUTPUT1_STAGING_DIR}/$1.txt"
    assert evaluate_template(text, scope) == (
        "(cd ${INPUT1_STAGING_DIR} && ./run events) > ${OUTPUT1_STAGING_DIR}/$1.txt")
    assert not parse_template(text).is_constant


# --- operators and literals -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expression", "expected"),
    [
        # The guide's examples.
        ("1 + 2", "3"),
        ("1 - 2", "-1"),
        ("1 * 2", "2"),
        ("1 / 2", "0"),
        ("1.0 / 2", "0.5"),
        ("2 ^ 2", "4.0"),
        ('"hel" + "lo"', "hello"),
        # Precedence and associativity.
        ("2 + 3 * 4", "14"),
        ("2 * 3 + 4 * 5", "26"),
        ("(2 + 3) * 4", "20"),
        ("10 - 4 - 3", "3"),
        ("100 / 10 / 5", "2"),
        ("2 ^ 3 ^ 2", "512.0"),
        ("(2 ^ 3) ^ 2", "64.0"),
        ("2 * 3 ^ 2", "18.0"),
        ("-2 ^ 2", "-4.0"),
        ("(-2) ^ 2", "4.0"),
        ("2 ^ -1", "0.5"),
        ("-3 * -2", "6"),
        ("--3", "3"),
        ("1 - -1", "2"),
        ("2*3-4/2", "4"),
        # Java integer division truncates toward zero.
        ("7 / 2", "3"),
        ("-7 / 2", "-3"),
        ("7 / -2", "-3"),
        ("7.0 / 2", "3.5"),
        ("1 / 3.0", "0.3333333333333333"),
        (".5 + .25", "0.75"),
        ("1.5 * 2", "3.0"),
        ("10000000.0 * 1", "1.0E7"),
        # + concatenates when either side is a String; others need numbers.
        ("'a' + 1", "a1"),
        ("1 + 'a'", "1a"),
        ("'a' + 1 + 2", "a12"),
        ("1 + 2 + 'a'", "3a"),
        ("'x' + 0.5", "x0.5"),
        ("'n' + (1 / 2)", "n0"),
        ("'5' * 2", "10"),
        ("'2.5' * 2", "5.0"),
        ("-'3'", "-3"),
        # Strings: both quotes, escapes, braces inside.
        ("'single'", "single"),
        ('"double"', "double"),
        ("'it\\'s'", "it's"),
        ('"say \\"hi\\""', 'say "hi"'),
        ("'a\\\\b'", "a\\b"),
        ("'tab\\there'", "tab\there"),
        ("'line\\nbreak'", "line\nbreak"),
        ("'\\d+'", "\\d+"),
        ("'}'", "}"),
        ("'#{not an expression}'", "#{not an expression}"),
        ("\"{'}'}\"", "{'}'}"),
        ("'${x}'", "${x}"),
        ("''", ""),
    ],
)
def test_operators_and_literals(expression: str, expected: str, scope: DictScope) -> None:
    assert evaluate_template("#{" + expression + "}", scope) == expected


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("1 + 2", 3),
        ("1.0 / 2", 0.5),
        ("2 ^ 2", 4.0),
        ("'a' + 'b'", "ab"),
        ("myList", ["one", "two"]),
        ("@scheduledStartTime", START),
        ("plusDays(@scheduledStartTime, 1)", datetime(2011, 5, 25, 17, 10, tzinfo=UTC)),
        ("day(@scheduledStartTime)", 24),
        ("flag", True),
        ("myNumbers * 10", [10, 20]),
    ],
)
def test_evaluate_expression_keeps_types(source: str, expected: object,
                                         scope: DictScope) -> None:
    result = evaluate_expression(source, scope)
    assert result == expected
    assert type(result) is type(expected)


def test_typed_numbers_from_the_scope(scope: DictScope) -> None:
    assert evaluate_template("#{myCount + 1}", scope) == "6"
    # a String that reads as a number is one for - * / ^, while + concatenates Strings
    assert evaluate_template("#{myCountText * 2}", scope) == "10"
    assert evaluate_template("#{myCountText - 1}", scope) == "4"
    assert evaluate_template("#{myCountText + 1}", scope) == "51"
    assert evaluate_template("#{myRatio * 100}", scope) == "25.0"


# --- names ------------------------------------------------------------------------------------


def test_names_and_paths(scope: DictScope) -> None:
    assert evaluate_template("#{table}", scope) == "events"
    assert evaluate_template("#{@id}", scope) == "@Activity_2011-05-24T17:10:00"
    assert evaluate_template("#{@scheduledStartTime}", scope) == "2011-05-24T17:10:00"
    assert evaluate_template("#{input.directoryPath}", scope) == "s3://in/dir"
    assert evaluate_template("#{node.output.directoryPath}", scope) == "s3://out/dir"
    assert evaluate_template("#{parent.@id}", scope) == "ParentDefaults"
    assert evaluate_template("#{node.@id}", scope) == "In"
    assert evaluate_template("#{*myPassword}", scope) == "hunter2-s3cr3t"
    assert evaluate_template("#{ input . directoryPath }", scope) == "s3://in/dir"


def test_an_object_reference_writes_its_id() -> None:
    node = DictScope({"id": "MyInput", "directoryPath": "s3://x"})
    scope = DictScope({"input": node, "inputs": [node, DictScope({"id": "Other"})]})
    assert evaluate_template("ref=#{input}", scope) == "ref=MyInput"
    assert evaluate_template("#{inputs}", scope) == ["MyInput", "Other"]


def test_a_path_over_a_list_of_objects_maps(scope: DictScope) -> None:
    assert evaluate_template("#{inputs.directoryPath}", scope) == ["s3://in/dir", "s3://in2"]
    assert evaluate_template("#{inputs.@id + '!'}", scope) == ["In!", "In2!"]


def test_masked_prefix_versus_multiplication(scope: DictScope) -> None:
    assert evaluate_template("#{myCount * myCount}", scope) == "25"
    assert evaluate_template("#{myCount*myCount}", scope) == "25"
    assert evaluate_template("#{'pw=' + *myPassword}", scope) == "pw=hunter2-s3cr3t"
    # a '*' where an operand is expected but not touching a name is not a prefix
    with pytest.raises(ExpressionSyntaxError) as info:
        parse_template("#{* myPassword}")
    assert info.value.position == 2


def test_several_expressions_in_one_field(scope: DictScope) -> None:
    text = "s3://b/#{table}/#{format(@scheduledStartTime,'YYYY-MM-dd')}/#{day(@scheduledStartTime)}/"
    assert evaluate_template(text, scope) == "s3://b/events/2011-05-24/24/"


def test_method_call_form(scope: DictScope) -> None:
    assert evaluate_template("#{@scheduledStartTime.format('YYYY-MM-dd HH:mm:ss')}", scope) == (
        "2011-05-24 17:10:00")
    assert evaluate_template(
        "#{@scheduledStartTime.plusDays(1).minusHours(2).format('dd HH')}", scope) == "25 15"
    assert evaluate_template("#{myDate.day()}", scope) == "24"
    assert evaluate_template("#{makeDate(2011, 5, 3).day()}", scope) == "3"
    assert evaluate_template("#{(@scheduledStartTime).year()}", scope) == "2011"


def test_nested_expression_is_a_sub_expression(scope: DictScope) -> None:
    # seen in a real definition: #{format(minusMinutes(#{mySchedulePeriod}, 10))}
    text = "#{format(minusMinutes(#{mySchedulePeriod}, 10), 'HH:mm')}"
    assert evaluate_template(text, scope) == "17:00"
    assert evaluate_template("#{2 * #{1 + 2}}", scope) == "6"
    assert evaluate_template("#{#{#{table}}}", scope) == "events"


def test_real_definition_fields(scope: DictScope) -> None:
    assert evaluate_template(
        "#{myWord}/#{format(@scheduledStartTime, 'YYYY-MM-dd-HH-mm-ss')}", scope) == (
        "abc/2011-05-24-17-10-00")
    assert evaluate_template(
        "(sudo yum -y update aws-cli) && (aws s3 rm #{input.directoryPath} --recursive)",
        scope) == "(sudo yum -y update aws-cli) && (aws s3 rm s3://in/dir --recursive)"
    assert evaluate_template(
        "ETL Rebuild Failure (Pizza): ${object_store.s3.prefix} at #{node.@scheduledStartTime}",
        DictScope({"node": DictScope({"@scheduledStartTime": START})}),
    ) == "ETL Rebuild Failure (Pizza): ${object_store.s3.prefix} at 2011-05-24T17:10:00"


# --- lists ------------------------------------------------------------------------------------


def test_lists_map_through_operators_and_templates(scope: DictScope) -> None:
    assert evaluate_template("#{'this is ' + myList}", scope) == ["this is one", "this is two"]
    assert evaluate_template("#{myList}", scope) == ["one", "two"]
    assert evaluate_template("s3://b/#{myList}/x", scope) == ["s3://b/one/x", "s3://b/two/x"]
    assert evaluate_template("#{myNumbers * 2}", scope) == ["2", "4"]
    assert evaluate_template("#{-myNumbers}", scope) == ["-1", "-2"]
    # two lists: every combination, left to right
    assert evaluate_template("#{myList}-#{myList2}", scope) == ["one-a", "one-b", "two-a",
                                                               "two-b"]
    assert evaluate_template("#{myList + myList2}", scope) == ["onea", "oneb", "twoa", "twob"]
    assert evaluate_template("#{myEmpty}", scope) == []
    assert evaluate_template("x#{myEmpty}", scope) == []


def test_functions_map_over_lists() -> None:
    scope = DictScope({"myDates": ["2011-05-01T00:00:00", "2011-06-02T00:00:00"]})
    assert evaluate_template("day=#{day(myDates)}", scope) == ["day=1", "day=2"]
    assert evaluate_template("#{myDates.format('MMM')}", scope) == ["May", "Jun"]


# --- syntax errors and positions --------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("#{table", 0, "'#{' is never closed by '}'"),
        ("abc #{1 +", 4, "'#{' is never closed"),
        ("ok #{a} then #{format(x", 13, "'#{' is never closed"),
        ("#{}", 0, "empty expression"),
        ("#{ }", 0, "empty expression"),
        ("#{1 + }", 6, "unexpected '}' where a value is expected"),
        ("#{a b}", 4, "unexpected name 'b'"),
        ("x #{1 2}", 6, "unexpected number 2"),
        ("#{(1 + 2}", 8, "expected ')' to close '(' at character 2"),
        ("#{format(x}", 10, "expected ',' or ')' to close '(' at character 8"),
        ("#{1 + 2)}", 7, "unbalanced ')'"),
        ("#{f(1,)}", 6, "unexpected ')' where a value is expected"),
        ("#{'abc}", 2, "unterminated string literal"),
        ('pre #{"abc}', 6, "unterminated string literal"),
        ("#{a.}", 4, "expected a field name after '.'"),
        ("#{a.1}", 3, "unexpected number 0.1"),
        ("#{@}", 2, "'@' must be followed by a field name"),
        ("#{a ! b}", 4, "unexpected character '!'"),
        ("#{a = b}", 4, "unexpected character '='"),
        ("#{a < b}", 4, "unexpected character '<'"),
        ("#{{a}}", 2, "unexpected character '{'"),
        ("#{x.@id()}", 4, "'@id' is a field name, not a function"),
        ("#{2 * #{1}", 0, "'#{' is never closed"),
        ("#{f(#{1)}}", 7, "expected '}' to close '#{' at character 4"),
        ("#{@a(1)}", 4, "unexpected '(': expected an operator"),
    ],
)
def test_syntax_errors_have_exact_positions(text: str, position: int, message: str) -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        parse_template(text)
    assert info.value.position == position
    assert message in info.value.message
    assert f"character {position}" in str(info.value)


def test_bare_expression_errors() -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        evaluate_expression("1 +", DictScope({}))
    assert info.value.position == 3
    with pytest.raises(ExpressionSyntaxError) as info:
        evaluate_expression("(1))", DictScope({}))
    assert info.value.position == 3
    with pytest.raises(ExpressionSyntaxError) as info:
        evaluate_expression("1 }", DictScope({}))
    assert info.value.position == 2


def test_errors_can_be_located_in_an_object_and_field() -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        parse_template("s3://#{(x}")
    located = info.value.located("MyNode", "directoryPath")
    assert str(located) == ("object 'MyNode', field 'directoryPath', character 9: "
                            + info.value.message)


# --- evaluation errors ------------------------------------------------------------------------


def test_unknown_name_has_position_and_suggestion(scope: DictScope) -> None:
    with pytest.raises(ExpressionEvalError) as info:
        evaluate_template("s3://#{tabel}/x", scope)
    assert info.value.position == 7
    assert info.value.message == "unknown name 'tabel' (did you mean 'table'?)"


def test_unknown_name_in_a_path(scope: DictScope) -> None:
    with pytest.raises(ExpressionEvalError) as info:
        evaluate_template("#{input.directoryPat}", scope)
    assert info.value.position == 8
    assert info.value.message == (
        "unknown name 'directoryPat' in 'input' (did you mean 'directoryPath'?)")
    with pytest.raises(ExpressionEvalError) as info:
        evaluate_template("#{node.output.nothingLikeIt}", scope)
    assert info.value.position == 14
    assert info.value.message == "unknown name 'nothingLikeIt' in 'node.output'"


def test_unknown_name_without_names_has_no_suggestion() -> None:
    with pytest.raises(ExpressionEvalError) as info:
        evaluate_template("ab#{tabel}", BareScope({"table": "x"}))
    assert info.value.message == "unknown name 'tabel'"
    assert info.value.position == 4


def test_field_of_a_value_that_is_not_an_object(scope: DictScope) -> None:
    with pytest.raises(ExpressionEvalError) as info:
        evaluate_template("#{table.name}", scope)
    assert info.value.position == 8
    assert "'table' is a String, which has no field 'name'" in info.value.message


@pytest.mark.parametrize(
    ("text", "position", "message"),
    [
        ("#{fromat(@scheduledStartTime, 'YYYY')}", 2,
         "unknown function fromat() (did you mean format()?)"),
        ("#{Day(@scheduledStartTime)}", 2, "unknown function Day() (did you mean day()?)"),
        ("x #{format(@scheduledStartTime)}", 4,
         "format() takes (DateTime, String), got 1 argument"),
        ("#{format(minusMinutes(#{mySchedulePeriod}, 10))}", 2,
         "format() takes (DateTime, String), got 1 argument"),
        ("#{@scheduledStartTime.format()}", 22,
         "format() takes (DateTime, String), got 1 argument"),
        ("#{day(myWord)}", 2, "argument 1 is a String that does not read as a DateTime"),
        ("#{1 / 0}", 4, "division by zero"),
        ("#{1.5 / 0}", 6, "division by zero"),
        ("#{0 ^ -1}", 4, "'^' result is out of range"),
        ("#{(-8) ^ 0.5}", 7, "'^' result is not a real number"),
        ("#{myWord - 1}", 9, "'-' needs numbers, got a String that does not read as a number"),
        ("#{@scheduledStartTime + 1}", 22, "use plusDays()"),
        ("#{-myWord}", 2, "'-' needs a number"),
        ("#{flag * 2}", 7, "'*' needs numbers, got a Boolean"),
        ("#{parent}", 2, "an object reference cannot be written as text"),
        ("#{format(@scheduledStartTime, 'yyyy qq')}", 2, "'q' is not a date format pattern"),
    ],
)
def test_evaluation_errors_name_the_problem_and_position(text: str, position: int,
                                                         message: str,
                                                         scope: DictScope) -> None:
    with pytest.raises(ExpressionEvalError) as info:
        evaluate_template(text, scope)
    assert info.value.position == position
    assert message in info.value.message


def test_secret_values_never_reach_error_text(scope: DictScope) -> None:
    secret = "hunter2-s3cr3t"
    for text in ("#{day(*myPassword)}", "#{*myPassword * 2}", "#{-*myPassword}",
                 "#{plusDays(@scheduledStartTime, *myPassword)}",
                 "#{format(*myPassword, 'yyyy')}", "#{*myPassword.nope}"):
        with pytest.raises(ExpressionEvalError) as info:
            evaluate_template(text, scope)
        assert secret not in str(info.value), text


def test_errors_from_the_scope_propagate_unchanged() -> None:
    class FailingScope:
        def lookup(self, name: str) -> object:
            raise ExpressionEvalError("inner problem", 3, object_id="Other", field="f")

    with pytest.raises(ExpressionEvalError) as info:
        evaluate_template("#{x}", FailingScope())
    assert (info.value.object_id, info.value.position) == ("Other", 3)


# --- template API -----------------------------------------------------------------------------


def test_references_lists_every_name_path_in_order() -> None:
    template = parse_template(
        "#{node.output.directoryPath}/#{*myPass}/#{x.format('a')}/"
        "#{format(@scheduledStartTime, b.c)}/#{plusDays(#{myDate}, n)}/#{day(f(g).h)}")
    assert template.references() == [
        Reference(("node", "output", "directoryPath"), 2),
        Reference(("*myPass",), 31),
        Reference(("x",), 42),
        Reference(("@scheduledStartTime",), 66),
        Reference(("b", "c"), 87),
        Reference(("myDate",), 106),
        Reference(("n",), 115),
        Reference(("g",), 127),
    ]
    for ref in template.references():
        assert template.text[ref.position:].startswith(ref.path[0])


def test_function_problems_are_found_without_a_scope() -> None:
    template = parse_template("#{fromat(x)} and #{format(minusMinutes(#{p}, 10))} #{day(y)}")
    problems = template.function_problems()
    assert [(p.position, p.message) for p in problems] == [
        (2, "unknown function fromat() (did you mean format()?)"),
        (19, "format() takes (DateTime, String), got 1 argument"),
    ]
    assert parse_template("#{day(x)} #{x.format('y')}").function_problems() == []


def test_parse_is_cached_and_templates_are_reusable(scope: DictScope) -> None:
    text = "s3://b/#{format(@scheduledStartTime, 'YYYY')}/#{table}"
    template = parse_template(text)
    assert parse_template(text) is template
    assert template.text == text
    assert template.evaluate(scope) == "s3://b/2011/events"
    other = DictScope({"@scheduledStartTime": datetime(2020, 1, 1, tzinfo=UTC),
                       "table": "t"})
    assert template.evaluate(other) == "s3://b/2020/t"


def test_a_syntax_error_is_raised_again_on_the_next_parse() -> None:
    for _ in range(2):
        with pytest.raises(ExpressionSyntaxError):
            parse_template("#{(}")
