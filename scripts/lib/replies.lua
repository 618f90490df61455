-- replies.lua - the example script's texts in German and English, and a
-- small guess at the language a customer writes in.
--
-- Shared modules live in scripts/lib/ and are loaded with require("name");
-- each is loaded once per script and cached.  Edit the texts here without
-- touching the logic in example.lua.

local M = {}

-- Common short words; whichever language has more of them wins (German
-- when undecided: the shop's home market).
local english = {}
for w in ("the my is you your what when where how please can do does are " ..
          "hello hi want money back order open i it me have has"):gmatch("%S+") do
  english[w] = true
end
local german = {}
for w in ("der die das ich ist wie wann wo bitte mein meine und habt ihr " ..
          "sie hallo will geld zurueck nicht kann euch mir hat haben"):gmatch("%S+") do
  german[w] = true
end

function M.lang(text)
  local en, de = 0, 0
  for _, w in ipairs(fd.words(text)) do
    if english[w] then en = en + 1 end
    if german[w] then de = de + 1 end
  end
  return en > de and "en" or "de"
end

M.text = {
  hours = {
    de = "Wir sind Mo–Fr von 9 bis 18 Uhr und Sa von 10 bis 14 Uhr für Sie da.",
    en = "We are open Mon–Fri 9am–6pm and Sat 10am–2pm.",
  },
  delivery = {
    de = "Die Lieferung dauert innerhalb Deutschlands 2–3 Werktage, ins Ausland 4–7 Werktage.",
    en = "Delivery takes 2–3 working days within Germany and 4–7 working days abroad.",
  },
  password = {
    de = "Klicken Sie bei der Anmeldung auf „Passwort vergessen“ – wir schicken Ihnen einen Link zum Zurücksetzen.",
    en = "Click “Forgot password” on the login page and we will send you a reset link.",
  },
  contact = {
    de = "Sie erreichen uns per Kontaktformular auf unserer Website oder Mo–Fr 9–18 Uhr unter der Hotline auf der Kontaktseite.",
    en = "You can reach us through the contact form on our website or Mon–Fri 9am–6pm via the hotline on the contact page.",
  },
  moved_public = {
    de = "Danke! Zu Ihrem Schutz schreiben wir privat weiter. Bitte posten Sie Bank-, Karten- oder Kontaktdaten nicht öffentlich.",
    en = "Thanks! To protect your data we will continue in a private message. Please don't post bank, card or contact details publicly.",
  },
  moved_private = {
    de = "Hallo %s, hier können wir sicher weiterschreiben. Ihre Angaben sind angekommen; schreiben Sie uns gern hier, worum es genau geht.",
    en = "Hi %s, we can talk safely here. We have received your details; feel free to tell us here what exactly this is about.",
  },
  order_public = {
    de = "Danke! Wir schauen uns Ihre Bestellung an und schreiben Ihnen privat.",
    en = "Thanks! We will look into your order and get back to you in a private message.",
  },
  order_private = {
    de = "Hallo %s, wir prüfen Ihre Bestellung gerade. Gibt es noch etwas, das wir dazu wissen sollten?",
    en = "Hi %s, we are checking your order now. Is there anything else we should know about it?",
  },
  private_ack = {
    de = "Danke, das ist angekommen. Ich gebe Ihren Fall an unsere Buchhaltung weiter – Sie hören heute noch von uns.",
    en = "Thanks, got it. I'm passing your case to our billing team – you will hear from us today.",
  },
  sorry = {
    de = "Das tut uns sehr leid. Eine Kollegin oder ein Kollege kümmert sich persönlich darum und meldet sich in Kürze.",
    en = "We are very sorry about this. A member of our team will take care of it personally and get back to you shortly.",
  },
  complex = {
    de = "Danke für Ihre Nachricht. Das klären wir am besten persönlich – ein Kollege aus dem Support meldet sich bei Ihnen.",
    en = "Thanks for your message. This is best handled personally – someone from our support team will get in touch.",
  },
  fallback = {
    de = "Danke für Ihre Frage! Darauf habe ich keine fertige Antwort – ich gebe sie an unser Team weiter.",
    en = "Thanks for your question! I don't have a ready answer, so I'm passing it on to our team.",
  },
  welcome = {
    de = "Gern geschehen! Schönen Tag noch.",
    en = "You're welcome! Have a nice day.",
  },
}

-- The text for `key` in `lang`; extra arguments fill its %s.
function M.say(key, lang, ...)
  local t = M.text[key]
  local s = t[lang] or t.de
  if select("#", ...) > 0 then
    s = s:format(...)
  end
  return s
end

return M
