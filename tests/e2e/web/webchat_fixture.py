"""webchat_fixture - the channel and small Lua script that the webchat tests
(tests/integration/test_webchat, tests/e2e/test_webchat_browser) run the real
daemon with, so they depend on no example script.

The script answers opening-hours questions in public, hides a post that holds
an IBAN and moves its author to private, and answers private messages naming
their case, so a test can check that the private talk joined the same case.
"""

CHANNEL = """[channel:demo]
plugin = webchat
script = demo.lua
title = Webchat <Test> & Co
history = 50
"""

SCRIPT = r'''
-- demo.lua: the webchat tests' script (see tests/lib/webchat_fixture.py).
local function case_id(msg)
  return (msg.case and msg.case.id) or "?"
end

local function has_iban(text)
  local compact = text:gsub("%s+", ""):upper()
  return compact:find("%u%u%d%d%w%w%w%w%w%w%w%w%w%w%w") ~= nil
end

function on_message(msg)
  local t = msg.text:lower()
  if msg.private then
    msg:reply("Thanks, " .. msg.user.name .. ". Your case #" .. case_id(msg) ..
              " is with our team; we answer here.")
    return
  end
  if has_iban(msg.text) then
    -- hide after the move to private, so the hide is not the first action
    -- on the board: the harder case for keeping the text off other boards
    msg:to_private{
      public = "Please don't post bank details in public. I hid the post and wrote to you privately.",
      private = "Hi " .. msg.user.name .. ", your post held bank details, so I hid it. " ..
                "How can I help with the payment?",
    }
    msg:hide()
    return
  end
  if t:find("opening hours", 1, true) or t:find("open", 1, true) then
    msg:reply("We are open Monday to Friday, 9am to 6pm.")
    return
  end
  msg:reply("Thanks for asking! A colleague will look at it.")
end
'''

OPENING_ANSWER = "We are open Monday to Friday, 9am to 6pm."
ACK_PREFIX = "Please don't post bank details in public."
IBAN = "DE89 3704 0044 0532 0130 00"
