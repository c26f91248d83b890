// fastify-two-factor: the few behaviours that need JavaScript. Everything works without it;
// this adds copy and print buttons and moves focus to the new step or error after a swap.
(function () {
  'use strict'

  function focusTarget (root) {
    var scope = root && root.querySelector ? root : document
    var card = scope.matches && scope.matches('[data-focus]') ? scope : scope.querySelector('[data-focus]')
    if (!card) return
    var selector = card.getAttribute('data-focus')
    var target = selector ? document.querySelector(selector) : null
    if (target) target.focus()
  }

  function copyText (button) {
    var source = document.querySelector(button.getAttribute('data-copy'))
    if (!source || !navigator.clipboard) return
    var text = source.tagName === 'OL'
      ? Array.prototype.map.call(source.querySelectorAll('li'), function (li) { return li.textContent.trim() }).join('\n')
      : source.textContent.replace(/\s+/g, '')
    navigator.clipboard.writeText(text).then(function () {
      var label = button.textContent
      button.textContent = 'Copied'
      setTimeout(function () { button.textContent = label }, 2000)
    })
  }

  function reveal (root) {
    var scope = root && root.querySelectorAll ? root : document
    scope.querySelectorAll('[data-copy][hidden], [data-print][hidden]').forEach(function (el) {
      if (el.hasAttribute('data-copy') && !navigator.clipboard) return
      el.hidden = false
    })
  }

  document.addEventListener('click', function (event) {
    var target = event.target
    if (!(target instanceof Element)) return
    var copy = target.closest('[data-copy]')
    if (copy) return copyText(copy)
    if (target.closest('[data-print]')) window.print()
  })

  document.addEventListener('htmx:after:swap', function (event) {
    var swapped = document.querySelector('[data-focus]')
    reveal(document)
    focusTarget(swapped ? swapped.parentNode : document)
  })

  function ready () {
    reveal(document)
    var card = document.querySelector('[data-focus]')
    var selector = card && card.getAttribute('data-focus')
    // On a full page only errors take focus; inputs use autofocus.
    if (selector && selector.indexOf('error') !== -1) focusTarget(document)
  }
  if (document.readyState === 'loading') document.addEventListener('DOMContentLoaded', ready)
  else ready()
})()
