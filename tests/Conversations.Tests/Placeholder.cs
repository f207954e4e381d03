namespace Conversations.Tests;
