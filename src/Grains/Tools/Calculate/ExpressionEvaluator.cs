using System.Collections.Frozen;
using System.Globalization;

namespace Conversations.Grains.Tools.Calculate;

/// <summary>
/// Evaluates an arithmetic expression over <see cref="double"/>: a hand-written tokenizer and a recursive-descent parser
/// that computes while it parses. No code is compiled or run; only the grammar below is understood.
/// </summary>
/// <remarks>
/// <para>Grammar, loosest binding first:</para>
/// <code>
/// expression := term (('+' | '-') term)*
/// term       := unary (('*' | '/' | '%') unary)*
/// unary      := ('+' | '-') unary | power
/// power      := primary ('^' unary)?            right-associative; binds tighter than a unary sign: -2^2 = -4
/// primary    := number | constant | function '(' arguments ')' | '(' expression ')'
/// </code>
/// <para>
/// Numbers are culture-invariant (<c>1.5</c>, <c>.5</c>, <c>1e3</c>, <c>2.5E-3</c>). <c>×</c>, <c>÷</c> and <c>−</c>
/// are read as <c>*</c>, <c>/</c> and <c>-</c>, and <c>**</c> as <c>^</c>. Names are case-insensitive. Implicit
/// multiplication (<c>2pi</c>, <c>2(3)</c>) is an error. Trigonometry is in radians; <c>%</c> is the remainder with
/// the sign of the dividend; <c>round</c> rounds halves away from zero.
/// </para>
/// <para>
/// Every failure is a <see cref="ToolException"/> whose message names the problem and, where there is one, the
/// 1-based character position: <c>Unexpected character '@' at position 5</c>.
/// </para>
/// </remarks>
public static class ExpressionEvaluator
{
    /// <summary>The longest expression accepted, in characters.</summary>
    public const int MaxLength = 1000;

    /// <summary>The deepest nesting accepted: parentheses, function arguments, unary signs and exponents.</summary>
    public const int MaxDepth = 100;

    private static readonly FrozenDictionary<string, double> Constants = new Dictionary<string, double>
    {
        ["pi"] = Math.PI,
        ["e"] = Math.E,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    private static readonly FrozenDictionary<string, Function> Functions = new Function[]
    {
        new("sqrt", 1, 1, a => Math.Sqrt(a[0])),
        new("abs", 1, 1, a => Math.Abs(a[0])),
        new("sin", 1, 1, a => Math.Sin(a[0])),
        new("cos", 1, 1, a => Math.Cos(a[0])),
        new("tan", 1, 1, a => Math.Tan(a[0])),
        new("asin", 1, 1, a => Math.Asin(a[0])),
        new("acos", 1, 1, a => Math.Acos(a[0])),
        new("atan", 1, 1, a => Math.Atan(a[0])),
        new("ln", 1, 1, a => Math.Log(a[0])),
        new("log", 1, 1, a => Math.Log10(a[0])),
        new("log2", 1, 1, a => Math.Log2(a[0])),
        new("exp", 1, 1, a => Math.Exp(a[0])),
        new("floor", 1, 1, a => Math.Floor(a[0])),
        new("ceil", 1, 1, a => Math.Ceiling(a[0])),
        new("round", 1, 2, a => a.Length == 1
            ? Math.Round(a[0], MidpointRounding.AwayFromZero)
            : Math.Round(a[0], (int)a[1], MidpointRounding.AwayFromZero)),
        new("min", 1, int.MaxValue, a => a.Min()),
        new("max", 1, int.MaxValue, a => a.Max()),
        new("pow", 2, 2, a => Math.Pow(a[0], a[1])),
    }.ToFrozenDictionary(f => f.Name, StringComparer.Ordinal);

    /// <summary>The function names the evaluator knows, lower case.</summary>
    public static IReadOnlyCollection<string> FunctionNames => Functions.Keys;

    /// <summary>The constant names the evaluator knows, lower case.</summary>
    public static IReadOnlyCollection<string> ConstantNames => Constants.Keys;

    /// <summary>Evaluates <paramref name="expression"/>; the result is always finite.</summary>
    /// <exception cref="ToolException">The expression is malformed, too long, too deep, or its value is not finite.</exception>
    public static double Evaluate(string expression)
    {
        ArgumentNullException.ThrowIfNull(expression);
        return new Parser(expression, checkMath: true).ParseAll();
    }

    /// <summary>
    /// True when <paramref name="expression"/> is syntactically an expression, whether or not its value is defined
    /// (<c>1/0</c> is well formed). Never throws.
    /// </summary>
    public static bool IsWellFormed(string expression)
    {
        try
        {
            new Parser(expression, checkMath: false).ParseAll();
            return true;
        }
        catch (ToolException)
        {
            return false;
        }
    }

    /// <summary>
    /// Formats a result in the invariant culture: whole numbers without a decimal point (<c>391</c>), others with up to
    /// 15 significant digits (<c>0.333333333333333</c>); very large or small magnitudes in exponent form (<c>1E+20</c>).
    /// </summary>
    public static string Format(double value)
    {
        if (!double.IsFinite(value))
        {
            throw new ArgumentOutOfRangeException(nameof(value), value, "Only finite values can be formatted.");
        }

        if (value == 0)
        {
            return "0"; // also for -0
        }

        return Math.Abs(value) < 1e16 && value == Math.Truncate(value)
            ? value.ToString("F0", CultureInfo.InvariantCulture)
            : value.ToString("G15", CultureInfo.InvariantCulture);
    }

    private sealed record Function(string Name, int MinArgs, int MaxArgs, Func<double[], double> Apply)
    {
        public string Arity => (MinArgs, MaxArgs) switch
        {
            (1, 1) => "1 argument",
            var (min, max) when min == max => $"{min} arguments",
            (_, int.MaxValue) => $"at least {MinArgs} argument{(MinArgs == 1 ? "" : "s")}",
            _ => $"{MinArgs} or {MaxArgs} arguments",
        };
    }

    private enum TokenKind
    {
        Number,
        Name,
        Plus,
        Minus,
        Star,
        Slash,
        Percent,
        Caret,
        LeftParen,
        RightParen,
        Comma,
        End,
    }

    // Position: 1-based position of the token's first character.
    private readonly record struct Token(TokenKind Kind, string Text, int Position, double Value = 0);

    private sealed class Parser
    {
        private readonly bool _checkMath;
        private readonly List<Token> _tokens;
        private int _index;
        private int _depth;

        public Parser(string expression, bool checkMath)
        {
            _checkMath = checkMath;
            _tokens = Tokenize(expression);
        }

        private Token Current => _tokens[_index];

        public double ParseAll()
        {
            var value = ParseExpression();
            if (Current.Kind != TokenKind.End)
            {
                var previous = _tokens[_index - 1];
                var afterOperand = previous.Kind is TokenKind.Number or TokenKind.Name or TokenKind.RightParen;
                var startsOperand = Current.Kind is TokenKind.Number or TokenKind.Name or TokenKind.LeftParen;
                throw new ToolException(afterOperand && startsOperand
                    ? $"Unexpected '{Current.Text}' at position {Current.Position}: implicit multiplication is not supported, write '*'"
                    : $"Unexpected '{Current.Text}' at position {Current.Position}");
            }

            return Checked(value, "the expression", 1);
        }

        private double ParseExpression()
        {
            var left = ParseTerm();
            while (Current.Kind is TokenKind.Plus or TokenKind.Minus)
            {
                var op = Advance();
                var right = ParseTerm();
                left = Checked(op.Kind == TokenKind.Plus ? left + right : left - right, $"'{op.Text}'", op.Position);
            }

            return left;
        }

        private double ParseTerm()
        {
            var left = ParseUnary();
            while (Current.Kind is TokenKind.Star or TokenKind.Slash or TokenKind.Percent)
            {
                var op = Advance();
                var right = ParseUnary();
                if (op.Kind != TokenKind.Star && right == 0 && _checkMath)
                {
                    throw new ToolException($"Division by zero at position {op.Position}");
                }

                var value = op.Kind switch
                {
                    TokenKind.Star => left * right,
                    TokenKind.Slash => left / right,
                    _ => left % right,
                };
                left = Checked(value, $"'{op.Text}'", op.Position);
            }

            return left;
        }

        private double ParseUnary()
        {
            if (Current.Kind is not (TokenKind.Plus or TokenKind.Minus))
            {
                return ParsePower();
            }

            var sign = Advance();
            Enter(sign);
            var operand = ParseUnary();
            _depth--;
            return sign.Kind == TokenKind.Minus ? -operand : operand;
        }

        private double ParsePower()
        {
            var left = ParsePrimary();
            if (Current.Kind != TokenKind.Caret)
            {
                return left;
            }

            var op = Advance();
            Enter(op);
            var exponent = ParseUnary(); // right-associative: 2^3^2 = 2^(3^2); allows 2^-1
            _depth--;
            return Checked(Math.Pow(left, exponent), "'^'", op.Position);
        }

        private double ParsePrimary()
        {
            var token = Current;
            switch (token.Kind)
            {
                case TokenKind.Number:
                    Advance();
                    return token.Value;

                case TokenKind.LeftParen:
                    Advance();
                    Enter(token);
                    var inner = ParseExpression();
                    _depth--;
                    Expect(TokenKind.RightParen, "')'");
                    return inner;

                case TokenKind.Name:
                    Advance();
                    return ParseName(token);

                case TokenKind.End:
                    throw new ToolException("Unexpected end of expression");

                default:
                    throw new ToolException($"Unexpected '{token.Text}' at position {token.Position}");
            }
        }

        private double ParseName(Token name)
        {
            var key = name.Text.ToLowerInvariant();
            var isCall = Current.Kind == TokenKind.LeftParen;
            if (Constants.TryGetValue(key, out var constant))
            {
                return isCall
                    ? throw new ToolException($"'{name.Text}' at position {name.Position} is a constant, not a function")
                    : constant;
            }

            if (!Functions.TryGetValue(key, out var function))
            {
                throw new ToolException(isCall
                    ? $"Unknown function '{name.Text}' at position {name.Position}"
                    : $"Unknown name '{name.Text}' at position {name.Position}");
            }

            if (!isCall)
            {
                throw new ToolException(
                    $"Function '{key}' at position {name.Position} needs its arguments in parentheses, e.g. {key}(2)");
            }

            var open = Advance();
            Enter(open);
            var arguments = new List<double>();
            if (Current.Kind != TokenKind.RightParen)
            {
                arguments.Add(ParseExpression());
                while (Current.Kind == TokenKind.Comma)
                {
                    Advance();
                    arguments.Add(ParseExpression());
                }
            }

            _depth--;
            Expect(TokenKind.RightParen, "',' or ')'");

            if (arguments.Count < function.MinArgs || arguments.Count > function.MaxArgs)
            {
                throw new ToolException(
                    $"Function '{key}' at position {name.Position} takes {function.Arity}, but {arguments.Count} {(arguments.Count == 1 ? "was" : "were")} given");
            }

            if (key == "round" && arguments.Count == 2
                && (arguments[1] != Math.Truncate(arguments[1]) || arguments[1] is < 0 or > 15))
            {
                throw new ToolException(
                    $"Function 'round' at position {name.Position} needs a whole number of digits from 0 to 15");
            }

            return Checked(function.Apply([.. arguments]), key, name.Position);
        }

        private Token Advance() => _tokens[_index++];

        private void Expect(TokenKind kind, string what)
        {
            if (Current.Kind != kind)
            {
                throw new ToolException($"Expected {what} at position {Current.Position}");
            }

            Advance();
        }

        private void Enter(Token at)
        {
            if (++_depth > MaxDepth)
            {
                throw new ToolException($"Expression is nested too deeply at position {at.Position} (the limit is {MaxDepth} levels)");
            }
        }

        private double Checked(double value, string what, int position)
        {
            if (!_checkMath || double.IsFinite(value))
            {
                return value;
            }

            throw new ToolException(double.IsNaN(value)
                ? $"Result of {what} at position {position} is not a real number"
                : $"Result of {what} at position {position} is not finite (too large)");
        }

        private static List<Token> Tokenize(string text)
        {
            if (text.Length > MaxLength)
            {
                throw new ToolException($"Expression is too long ({text.Length} characters; the limit is {MaxLength})");
            }

            var tokens = new List<Token>();
            var i = 0;
            while (i < text.Length)
            {
                var c = text[i];
                if (char.IsWhiteSpace(c))
                {
                    i++;
                    continue;
                }

                var position = i + 1;
                if (char.IsAsciiDigit(c) || (c == '.' && i + 1 < text.Length && char.IsAsciiDigit(text[i + 1])))
                {
                    tokens.Add(ReadNumber(text, ref i));
                    continue;
                }

                if (char.IsAsciiLetter(c) || c == '_')
                {
                    var start = i;
                    while (i < text.Length && (char.IsAsciiLetterOrDigit(text[i]) || text[i] == '_'))
                    {
                        i++;
                    }

                    tokens.Add(new Token(TokenKind.Name, text[start..i], position));
                    continue;
                }

                if (c == '*' && i + 1 < text.Length && text[i + 1] == '*')
                {
                    tokens.Add(new Token(TokenKind.Caret, "**", position));
                    i += 2;
                    continue;
                }

                var kind = c switch
                {
                    '+' => TokenKind.Plus,
                    '-' or '−' => TokenKind.Minus,
                    '*' or '×' => TokenKind.Star,
                    '/' or '÷' => TokenKind.Slash,
                    '%' => TokenKind.Percent,
                    '^' => TokenKind.Caret,
                    '(' => TokenKind.LeftParen,
                    ')' => TokenKind.RightParen,
                    ',' => TokenKind.Comma,
                    _ => throw new ToolException($"Unexpected character {Describe(text, i)} at position {position}"),
                };
                tokens.Add(new Token(kind, c.ToString(), position));
                i++;
            }

            if (tokens.Count == 0)
            {
                throw new ToolException("Empty expression");
            }

            tokens.Add(new Token(TokenKind.End, "", text.Length + 1));
            return tokens;
        }

        private static Token ReadNumber(string text, ref int i)
        {
            var start = i;
            var wellFormed = true;
            SkipDigits(text, ref i);
            if (i < text.Length && text[i] == '.')
            {
                i++;
                wellFormed = i < text.Length && char.IsAsciiDigit(text[i]);
                SkipDigits(text, ref i);
            }

            if (i < text.Length && text[i] is 'e' or 'E')
            {
                i++;
                if (i < text.Length && text[i] is '+' or '-')
                {
                    i++;
                }

                wellFormed &= i < text.Length && char.IsAsciiDigit(text[i]);
                SkipDigits(text, ref i);
            }

            // "1.2.3" or "1e5.2": swallow the rest so the message shows the whole malformed number.
            if (i < text.Length && text[i] == '.')
            {
                wellFormed = false;
                while (i < text.Length && (char.IsAsciiDigit(text[i]) || text[i] == '.'))
                {
                    i++;
                }
            }

            var literal = text[start..i];
            if (!wellFormed)
            {
                throw new ToolException($"Malformed number '{literal}' at position {start + 1}");
            }

            var value = double.Parse(literal, NumberStyles.Float, CultureInfo.InvariantCulture);
            return double.IsFinite(value)
                ? new Token(TokenKind.Number, literal, start + 1, value)
                : throw new ToolException($"Number '{literal}' at position {start + 1} is too large");
        }

        private static void SkipDigits(string text, ref int i)
        {
            while (i < text.Length && char.IsAsciiDigit(text[i]))
            {
                i++;
            }
        }

        private static string Describe(string text, int i)
        {
            var c = text[i];
            if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
            {
                return $"'{text.Substring(i, 2)}'";
            }

            return char.IsControl(c) || char.IsSurrogate(c) ? $"U+{(int)c:X4}" : $"'{c}'";
        }
    }
}
