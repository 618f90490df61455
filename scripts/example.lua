-- example.lua - a starting point for a shop's support script, German and
-- English.  frontdesk calls on_message(msg) for every message of the
-- channel (DESIGN.md, "The script API"); the actions it takes are sent
-- only when on_message returns without an error.  Tests: example_test.lua,
-- run with `frontdesk test scripts/`.
--
-- What it does, in this order:
--   1. a private message in a case we already moved to private: thank the
--      customer and hand the case to the billing team;
--   2. bank or card data, e-mail, phone or an order number: move to private
--      messaging (the public answer never repeats the data) and hide the
--      public post where the platform can;
--   3. an angry or complex message: a short public note, then humans;
--   4. a known question (FAQ): answer it;
--   5. anything else: questions and private messages go to humans, public
--      chatter is left alone.

local R = require("replies")

-- Compiled once when the script loads: matching costs about the same with
-- 5 or 5000 entries.  Phrases match whole words after normalisation
-- (case, umlauts, punctuation); "word*" matches as a prefix.
local faq = fd.faq{
  { {"öffnungszeit*", "geöffnet", "habt ihr offen", "seid ihr offen", "wann habt ihr auf",
     "opening hours", "opening times", "are you open", "business hours"}, "hours" },
  { {"lieferzeit*", "wie lange dauert die lieferung", "wie lange dauert der versand",
     "versanddauer", "wann kommt meine bestellung",
     "delivery time", "how long does delivery take", "shipping time",
     "how long does shipping take"}, "delivery" },
  { {"passwort vergessen", "passwort zurücksetzen", "kennwort vergessen", "passwort*",
     "forgot my password", "forgot password", "reset my password", "password reset",
     "reset password", "cannot log in", "can't log in"}, "password" },
  { {"kontakt", "telefonnummer", "hotline", "erreichen", "ansprechpartner",
     "contact", "phone number", "customer service", "reach you"}, "contact" },
}

-- Topics a bot should not handle alone.
local complex_topics = {
  "kündig*", "vertrag", "datenschutz", "dsgvo", "widerruf*", "insolvenz",
  "cancel my contract", "gdpr", "legal", "data protection",
}

local function is_complex(text)
  if #text > 600 then
    return true
  end
  local _, questions = text:gsub("%?+", "")
  return questions >= 3 or fd.has(text, complex_topics)
end

function on_message(msg)
  local text = msg.text
  local lang = R.lang(text)

  -- 1. The customer answers in private after we moved the case there.
  if msg.private and msg.case.state == "private" then
    msg:reply(R.say("private_ack", lang))
    msg:handoff{queue = "billing", note = "continued in private: " .. fd.redact(text)}
    return
  end

  -- 2. Personal data: never repeat it in public.
  local data = fd.sensitive(text)
  local order = fd.order_number(text)
  if data or order then
    if msg.private then
      msg:reply(R.say("private_ack", lang))
      msg:handoff{queue = data and "billing" or "orders", note = fd.redact(text)}
    else
      local pub, priv = "order_public", "order_private"
      if data then
        pub, priv = "moved_public", "moved_private"
      end
      msg:to_private{public = R.say(pub, lang), private = R.say(priv, lang, msg.user.name)}
      if data and fd.can("hide") then
        msg:hide()
      end
      msg:tag(data and "sensitive-data" or "order")
    end
    return
  end

  -- 3. Angry or complex: a person takes over.
  local tone = fd.tone(text)
  if tone <= -0.5 then
    msg:reply(R.say("sorry", lang))
    msg:handoff{queue = "complaints", note = ("tone %.2f: %s"):format(tone, text)}
    msg:tag("complaint")
    return
  end
  if is_complex(text) then
    msg:reply(R.say("complex", lang))
    msg:handoff{queue = "support", note = text}
    return
  end

  -- 4. A question we know.
  local key = faq:match(text)
  if key then
    msg:reply(R.say(key, lang))
    msg:tag("faq-" .. key)
    return
  end

  -- 5. Everything else.
  local question = text:find("?", 1, true) ~= nil
  if tone > 0.2 and not question then
    msg:reply(R.say("welcome", lang))
  elseif msg.private or question then
    msg:reply(R.say("fallback", lang))
    msg:handoff{queue = "support", note = text}
  end
  -- public chatter without a question: no action
end
