using Conversations.Grains.Tools;
using Conversations.Grains.Tools.Calculate;

namespace Conversations.Tests.Tools;

public sealed class ExpressionEvaluatorTests
{
    [Theory]
    [InlineData("17 * 23", 391)]
    [InlineData("2 + 3 * 4", 14)]
    [InlineData("(2 + 3) * 4", 20)]
    [InlineData("10 - 4 - 3", 3)]
    [InlineData("100 / 10 / 5", 2)]
    [InlineData("2 * 3 % 4", 2)]
    [InlineData("7 % 3", 1)]
    [InlineData("-7 % 3", -1)]
    [InlineData("1 + 2 ^ 3 * 2", 17)]
    public void Operators_follow_the_usual_precedence_and_left_associativity(string expression, double expected) =>
        Assert.Equal(expected, ExpressionEvaluator.Evaluate(expression));

    [Theory]
    [InlineData("2 ^ 3 ^ 2", 512)]
    [InlineData("-2 ^ 2", -4)]
    [InlineData("(-2) ^ 2", 4)]
    [InlineData("2 ^ -1", 0.5)]
    [InlineData("2 ** 10", 1024)]
    [InlineData("- - 3", 3)]
    [InlineData("+3", 3)]
    [InlineData("2 * -3", -6)]
    public void Power_is_right_associative_and_binds_tighter_than_unary_minus(string expression, double expected) =>
        Assert.Equal(expected, ExpressionEvaluator.Evaluate(expression));

    [Theory]
    [InlineData("sqrt(16)", 4)]
    [InlineData("abs(-3.5)", 3.5)]
    [InlineData("sin(0)", 0)]
    [InlineData("cos(0)", 1)]
    [InlineData("tan(0)", 0)]
    [InlineData("asin(1)", Math.PI / 2)]
    [InlineData("acos(1)", 0)]
    [InlineData("atan(1)", Math.PI / 4)]
    [InlineData("ln(e)", 1)]
    [InlineData("log(1000)", 3)]
    [InlineData("log2(1024)", 10)]
    [InlineData("exp(0)", 1)]
    [InlineData("floor(-2.5)", -3)]
    [InlineData("ceil(2.1)", 3)]
    [InlineData("round(2.5)", 3)]
    [InlineData("round(-2.5)", -3)]
    [InlineData("round(3.14159, 2)", 3.14)]
    [InlineData("min(4, -1, 7)", -1)]
    [InlineData("max(4, -1, 7)", 7)]
    [InlineData("max(5)", 5)]
    [InlineData("pow(2, 8)", 256)]
    [InlineData("SQRT(4) + Max(1, 2)", 4)]
    [InlineData("sqrt(sqrt(16) * 4) + 1", 5)]
    public void Functions_compute_their_values(string expression, double expected) =>
        Assert.Equal(expected, ExpressionEvaluator.Evaluate(expression), 12);

    [Theory]
    [InlineData("pi", Math.PI)]
    [InlineData("e", Math.E)]
    [InlineData("2 * pi", 2 * Math.PI)]
    [InlineData("PI", Math.PI)]
    public void Constants_pi_and_e_are_known(string expression, double expected) =>
        Assert.Equal(expected, ExpressionEvaluator.Evaluate(expression));

    [Theory]
    [InlineData("1e3", 1000)]
    [InlineData("2.5E-3", 0.0025)]
    [InlineData("1e+2", 100)]
    [InlineData(".5 + 0.25", 0.75)]
    [InlineData("6 × 7 ÷ 2 − 1", 20)]
    [InlineData("  \t12\n", 12)]
    public void Numbers_are_read_in_the_invariant_culture_with_exponents(string expression, double expected) =>
        Assert.Equal(expected, ExpressionEvaluator.Evaluate(expression));

    [Theory]
    [InlineData("2 + @", "Unexpected character '@' at position 5")]
    [InlineData("2 # 3", "Unexpected character '#' at position 3")]
    [InlineData("", "Empty expression")]
    [InlineData("   ", "Empty expression")]
    [InlineData("foo(2)", "Unknown function 'foo' at position 1")]
    [InlineData("1 + x", "Unknown name 'x' at position 5")]
    [InlineData("pi(2)", "'pi' at position 1 is a constant, not a function")]
    [InlineData("sqrt 4", "Function 'sqrt' at position 1 needs its arguments in parentheses, e.g. sqrt(2)")]
    [InlineData("1 / 0", "Division by zero at position 3")]
    [InlineData("5 % (2 - 2)", "Division by zero at position 3")]
    [InlineData("(1 + 2", "Expected ')' at position 7")]
    [InlineData("max(1, 2", "Expected ',' or ')' at position 9")]
    [InlineData("1 +", "Unexpected end of expression")]
    [InlineData("1 + )", "Unexpected ')' at position 5")]
    [InlineData("(1) 2", "Unexpected '2' at position 5: implicit multiplication is not supported, write '*'")]
    [InlineData("2pi", "Unexpected 'pi' at position 2: implicit multiplication is not supported, write '*'")]
    [InlineData("1.", "Malformed number '1.' at position 1")]
    [InlineData("1.2.3", "Malformed number '1.2.3' at position 1")]
    [InlineData("2e", "Malformed number '2e' at position 1")]
    [InlineData("1e999", "Number '1e999' at position 1 is too large")]
    [InlineData("sqrt(1, 2)", "Function 'sqrt' at position 1 takes 1 argument, but 2 were given")]
    [InlineData("pow(2)", "Function 'pow' at position 1 takes 2 arguments, but 1 was given")]
    [InlineData("min()", "Function 'min' at position 1 takes at least 1 argument, but 0 were given")]
    [InlineData("round(1, 2, 3)", "Function 'round' at position 1 takes 1 or 2 arguments, but 3 were given")]
    [InlineData("round(1, 0.5)", "Function 'round' at position 1 needs a whole number of digits from 0 to 15")]
    [InlineData("sqrt(-1)", "Result of sqrt at position 1 is not a real number")]
    [InlineData("ln(0)", "Result of ln at position 1 is not finite (too large)")]
    [InlineData("10 ^ 400", "Result of '^' at position 4 is not finite (too large)")]
    [InlineData("1e308 * 10", "Result of '*' at position 7 is not finite (too large)")]
    [InlineData("(-8) ^ (1/3)", "Result of '^' at position 6 is not a real number")]
    public void Errors_name_the_problem_and_its_position(string expression, string message)
    {
        var error = Assert.Throws<ToolException>(() => ExpressionEvaluator.Evaluate(expression));
        Assert.Equal(message, error.Message);
    }

    [Fact]
    public void Expressions_longer_than_the_limit_are_rejected()
    {
        var atLimit = "1" + string.Concat(Enumerable.Repeat("+1", (ExpressionEvaluator.MaxLength - 1) / 2));
        Assert.True(atLimit.Length <= ExpressionEvaluator.MaxLength);
        Assert.Equal((atLimit.Length + 1) / 2, ExpressionEvaluator.Evaluate(atLimit));

        var tooLong = new string(' ', ExpressionEvaluator.MaxLength) + "1";
        var error = Assert.Throws<ToolException>(() => ExpressionEvaluator.Evaluate(tooLong));
        Assert.Equal("Expression is too long (1001 characters; the limit is 1000)", error.Message);
    }

    [Fact]
    public void Nesting_up_to_the_depth_limit_is_accepted()
    {
        var depth = ExpressionEvaluator.MaxDepth;
        var nested = new string('(', depth) + "1" + new string(')', depth);
        Assert.Equal(1, ExpressionEvaluator.Evaluate(nested));
    }

    [Theory]
    [InlineData('(')]
    [InlineData('-')]
    public void Nesting_deeper_than_the_limit_is_rejected_without_overflowing_the_stack(char opener)
    {
        var tooDeep = opener == '('
            ? new string('(', 400) + "1" + new string(')', 400)
            : new string('-', 999) + "1";
        var error = Assert.Throws<ToolException>(() => ExpressionEvaluator.Evaluate(tooDeep));
        Assert.Equal("Expression is nested too deeply at position 101 (the limit is 100 levels)", error.Message);
    }

    [Fact]
    public void Power_chains_count_towards_the_depth_limit()
    {
        var chain = "2" + string.Concat(Enumerable.Repeat("^1", 150));
        var error = Assert.Throws<ToolException>(() => ExpressionEvaluator.Evaluate(chain));
        Assert.StartsWith("Expression is nested too deeply", error.Message);
    }

    [Theory]
    [InlineData(391.0, "391")]
    [InlineData(-42.0, "-42")]
    [InlineData(-0.0, "0")]
    [InlineData(1.0 / 3, "0.333333333333333")]
    [InlineData(0.1 + 0.2, "0.3")]
    [InlineData(2.5, "2.5")]
    [InlineData(9007199254740992.0, "9007199254740992")]
    [InlineData(1e20, "1E+20")]
    [InlineData(1.5e-7, "1.5E-07")]
    public void Results_are_formatted_invariantly_with_up_to_15_significant_digits(double value, string expected) =>
        Assert.Equal(expected, ExpressionEvaluator.Format(value));

    [Theory]
    [InlineData("1 / 0", true)]
    [InlineData("sqrt(-1)", true)]
    [InlineData("17 * 23", true)]
    [InlineData("1 +", false)]
    [InlineData("2 3", false)]
    [InlineData("hello", false)]
    [InlineData("", false)]
    public void Well_formedness_ignores_math_errors_but_not_syntax_errors(string expression, bool expected) =>
        Assert.Equal(expected, ExpressionEvaluator.IsWellFormed(expression));
}
